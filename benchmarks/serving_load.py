"""Bounded load on the HTTP server (127.0.0.1): concurrent clients, p50/p99 latency, throughput, failures,
and the ratio to the in-process pipeline's throughput (goal >= 0.9x, zero failed requests).

    OMP_NUM_THREADS=2 python benchmarks/serving_load.py [--model_dir DIR | --home DIR | --untrained MODEL]
                                                        [--images training demo] [--run_mode mkldnn]
                                                        [--clients 4] [--requests 24] [--rounds 3]
                                                        [--max_batch_size 4 [--max_wait_ms 10]]

The model is ``--model_dir``, else ``--untrained MODEL`` (e.g. ``Mask-RT-DETR-S``: exported once with seeded
random weights into ``output/serving_load/MODEL-untrained``; fine for timing -- the forward pass and the
post-process cost the same whatever the weights -- but its detections mean nothing and few pass a threshold),
else the 4-epoch quick-start model (32 images) built once in ``--home``, else the shipped quick-start model.
Micro-batching only runs several images per forward pass for a model that can (``batch_size_limit`` of its
``inference.yml``: Mask-RT-DETR, not the paddledet quick-start model), on ``--run_mode`` ``paddle``, ``mkldnn``,
``onnxruntime`` or ``openvino``; requests of one image have one size, so they batch. Each image (a path, ``demo`` for data/remotesensing_demo.png, or ``training`` for the
busiest training image of a quick-start model) is sent as base64, once asking for the overlay image
(``visualize``, the default) and once without it; the in-process rate is ``pipeline.predict(path)`` in a loop,
measured between the served runs. ``--max_batch_size N`` (> 1) also runs a second server with micro-batching and
reports both, round by round. The last lines are a markdown table (what ``run_all.py`` copies).
"""
import argparse
import base64
import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import requests
import yaml

import tutorial_lib as tl
from tutorial_lib.serving import free_port

DEMO = Path(__file__).resolve().parents[1] / "data" / "remotesensing_demo.png"


def in_process_rate(pipeline, image, threshold, n):
    start = time.perf_counter()
    for _ in range(n):
        next(pipeline.predict(image, threshold=threshold))
    return n / (time.perf_counter() - start)


def load(url, body, clients, n):
    """``n`` requests from ``clients`` concurrent clients; (latencies in ms, failures, requests per second).
    The JSON body is serialised once: the clients share the server's 2 cores, and re-encoding a few hundred KB of
    base64 per request would be measured as the server's cost."""
    data = json.dumps(body).encode()
    headers = {"content-type": "application/json"}

    def one(_):
        t0 = time.perf_counter()
        try:
            response = requests.post(url + "/instance-segmentation", data=data, headers=headers, timeout=120)
            ok = response.json()["errorCode"] == 0
        except (requests.RequestException, ValueError):
            ok = False
        return time.perf_counter() - t0, ok

    start = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        results = list(pool.map(one, range(n)))
    elapsed = time.perf_counter() - start
    return np.array([r[0] for r in results]) * 1000, sum(not r[1] for r in results), n / elapsed


def start_server(config, run_mode, flags):
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "tutorial_lib", "--serve", "--pipeline", str(config),
                               "--run_mode", run_mode, "--port", str(port), *flags],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=dict(os.environ))
    return server, f"http://127.0.0.1:{port}"


def wait_ready(server, url, timeout_s=300):
    """The server loads the model after it starts listening: wait for ``/health/ready``."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"the server exited with {server.returncode}")
        try:
            if requests.get(url + "/health/ready", timeout=2).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.5)
    raise SystemExit("the server did not get ready")


def quickstart_model(home):
    """The 4-epoch quick-start model (32 generated images) the serving benchmarks use, trained once in ``home``."""
    from tutorial_lib.quickstart import quickstart_model_dir

    return quickstart_model_dir(epochs=4, num_train=32, home=home)


def untrained_model(model_name, workdir):
    """``model_name`` exported with seeded random weights (timing only), once, in ``workdir``."""
    from tutorial_lib.engine.export import export_untrained

    target = Path(workdir) / f"{model_name}-untrained"
    if not (target / "inference.yml").is_file():
        print(f"exporting {model_name} with random weights into {target} (timing only)")
        export_untrained(model_name, target)
    return target


def resolve_image(name, model_dir):
    if name == "demo":
        return DEMO
    if name == "training":
        from tutorial_lib.quickstart import training_scene

        return training_scene(model_dir)
    return Path(name)


def serve_config(model_dir, model_name, workdir):
    """A pipeline YAML in ``workdir`` that serves ``model_dir``."""
    config = tl.get_pipeline_config("instance_segmentation", workdir)
    cfg = yaml.safe_load(config.read_text())
    cfg["SubModules"]["InstanceSegmentation"].update(model_dir=str(Path(model_dir).resolve()), model_name=model_name)
    config.write_text(yaml.safe_dump(cfg))
    return config


def measure(pipeline, image, running, args):
    """Alternate in-process and served rounds on one image; its label and the rows of its table."""
    instances = len(next(pipeline.predict(str(image), threshold=args.threshold)).boxes)  # and a warm-up
    encoded = base64.b64encode(Path(image).read_bytes()).decode()
    extra = {} if args.threshold is None else {"threshold": args.threshold}
    bodies = {"visualize: false": {"image": encoded, "visualize": False, **extra},
              "overlay image": {"image": encoded, "visualize": True, **extra}}
    for _, url in running.values():
        requests.post(url + "/instance-segmentation", json=bodies["overlay image"], timeout=120)  # warm-up
    kinds = {f"{name}, {kind}": (name, body) for name in running for kind, body in bodies.items()}
    rates = {"in-process": [], **{k: [] for k in kinds}}
    latencies = {k: [] for k in kinds}
    failures = dict.fromkeys(kinds, 0)
    for _ in range(args.rounds):
        rates["in-process"].append(in_process_rate(pipeline, str(image), args.threshold, args.requests))
        for kind, (name, body) in kinds.items():
            ms, failed, rate = load(running[name][1], body, args.clients, args.requests)
            latencies[kind].append(ms)
            rates[kind].append(rate)
            failures[kind] += failed
    base = float(np.median(rates["in-process"]))
    rows = [("in-process", None, None, base, None)]
    for kind in kinds:
        ms = np.concatenate(latencies[kind])
        rows.append((kind, np.percentile(ms, 50), np.percentile(ms, 99), float(np.median(rates[kind])),
                     failures[kind]))
    return image_label(image, instances), base, rows


def image_label(image, instances):
    from PIL import Image

    with Image.open(image) as im:
        size, fmt = max(im.size), im.format
    return f"{Path(image).name}, {size} px {fmt}, {instances} instances"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model_dir", help="exported model")
    parser.add_argument("--home", help="train / reuse the 4-epoch quick-start model in this TUTORIAL_LIB_HOME")
    parser.add_argument("--untrained", metavar="MODEL",
                        help="export MODEL (e.g. Mask-RT-DETR-S) with random weights once and serve it (timing only)")
    parser.add_argument("--images", nargs="+", default=["demo"], help="paths, `demo` or `training` (default: demo)")
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--requests", type=int, default=24, help="per round and kind")
    parser.add_argument("--rounds", type=int, default=3, help="in-process and served runs alternate, round by round")
    parser.add_argument("--run_mode", default="mkldnn")
    parser.add_argument("--threshold", type=float, help="score threshold of every request (default: the model's)")
    parser.add_argument("--max_batch_size", type=int, default=1, help="> 1: also serve with micro-batching")
    parser.add_argument("--max_wait_ms", type=float, default=10.0)
    args = parser.parse_args()
    workdir = Path("output") / "serving_load"
    model_dir = args.model_dir or (untrained_model(args.untrained, workdir) if args.untrained else
                                   quickstart_model(args.home) if args.home else None)
    pipeline = tl.create_pipeline("instance_segmentation", model_dir=model_dir, run_mode=args.run_mode)
    model_dir = pipeline.predictor.model_dir
    images = [resolve_image(name, model_dir) for name in args.images]
    config = serve_config(model_dir, pipeline.predictor.model_name, workdir)
    servers = {"served": []}
    if args.max_batch_size > 1:
        servers[f"batched (max {args.max_batch_size}, {args.max_wait_ms:g} ms)"] = [
            "--max_batch_size", str(args.max_batch_size), "--max_wait_ms", str(args.max_wait_ms)]
    running, results = {}, []
    try:
        for name, flags in servers.items():
            running[name] = start_server(config, args.run_mode, flags)
        for server, url in running.values():
            wait_ready(server, url)
        for image in images:
            results.append(measure(pipeline, image, running, args))
    finally:
        for server, _ in running.values():
            server.terminate()
            server.wait(30)
    info = pipeline.predictor.info
    print(f"{pipeline.predictor.model_name} ({model_dir}{', random weights' if args.untrained else ''}), "
          f"run_mode={args.run_mode}, {args.clients} concurrent clients, {args.rounds} rounds of {args.requests} "
          f"requests per kind (medians of the rounds); batch_size_limit {info.get('batch_size_limit')}, "
          f"batch_same_size {info.get('batch_same_size', False)}")
    print("\n| image | kind | p50 ms | p99 ms | images / s | × in-process (goal ≥ 0.9×) | failed |")
    print("|---|---|---|---|---|---|---|")
    for label, base, rows in results:
        for kind, p50, p99, rate, failed in rows:
            if p50 is None:
                print(f"| {label} | in-process pipeline | | | {rate:.2f} | 1.00× | |")
            else:
                print(f"| | {kind} | {p50:,.0f} | {p99:,.0f} | {rate:.2f} | **{rate / base:.2f}×** | {failed} |")
    return 1 if any(r[4] for _, _, rows in results for r in rows[1:]) else 0


if __name__ == "__main__":
    sys.exit(main())
