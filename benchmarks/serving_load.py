"""Bounded load on the HTTP server (127.0.0.1): concurrent clients, p50/p99 latency, throughput, failures,
and the ratio to the in-process pipeline's throughput (goal >= 0.9x, zero failed requests).

    OMP_NUM_THREADS=2 python benchmarks/serving_load.py --model_dir DIR [--clients 4] [--requests 24] [--rounds 3]
                                                        [--max_batch_size 4 [--max_wait_ms 10]]

Requests send the demo scene as base64 PNG, once asking for the overlay image (``visualize``, the default) and
once without it; the in-process rate is ``pipeline.predict(path)`` in a loop, measured between the served runs.
``--max_batch_size N`` (> 1) also runs a second server with micro-batching and reports both, round by round.
"""
import argparse
import base64
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
    """``n`` requests from ``clients`` concurrent clients; (latencies in ms, failures, requests per second)."""
    def one(_):
        t0 = time.perf_counter()
        try:
            ok = requests.post(url + "/instance-segmentation", json=body, timeout=120).json()["errorCode"] == 0
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


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model_dir", help="exported model (default: the quick-start model)")
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--requests", type=int, default=24, help="per round and kind")
    parser.add_argument("--rounds", type=int, default=3, help="in-process and served runs alternate, round by round")
    parser.add_argument("--run_mode", default="mkldnn")
    parser.add_argument("--image", default=str(DEMO), help="image sent (default: the demo scene)")
    parser.add_argument("--threshold", type=float, help="score threshold of every request (default: the model's)")
    parser.add_argument("--max_batch_size", type=int, default=1, help="> 1: also serve with micro-batching")
    parser.add_argument("--max_wait_ms", type=float, default=10.0)
    args = parser.parse_args()
    pipeline = tl.create_pipeline("instance_segmentation", model_dir=args.model_dir, run_mode=args.run_mode)
    image = args.image
    next(pipeline.predict(image, threshold=args.threshold))  # warm-up

    config = tl.get_pipeline_config("instance_segmentation", Path("output") / "serving_load")
    cfg = yaml.safe_load(config.read_text())
    cfg["SubModules"]["InstanceSegmentation"].update(model_dir=str(Path(pipeline.predictor.model_dir).resolve()),
                                                     model_name=pipeline.predictor.model_name)
    config.write_text(yaml.safe_dump(cfg))
    encoded = base64.b64encode(Path(image).read_bytes()).decode()
    extra = {} if args.threshold is None else {"threshold": args.threshold}
    bodies = {"visualize=false": {"image": encoded, "visualize": False, **extra},
              "overlay image": {"image": encoded, "visualize": True, **extra}}
    servers = {"served": []}
    if args.max_batch_size > 1:
        servers[f"batched {args.max_batch_size}"] = ["--max_batch_size", str(args.max_batch_size),
                                                     "--max_wait_ms", str(args.max_wait_ms)]
    kinds = {f"{name}, {kind}": (name, body) for name in servers for kind, body in bodies.items()}
    rates = {"in-process": [], **{k: [] for k in kinds}}
    latencies = {k: [] for k in kinds}
    failures = 0
    running = {}
    try:
        for name, flags in servers.items():
            running[name] = start_server(config, args.run_mode, flags)
        for name, (server, url) in running.items():
            wait_ready(server, url)
            requests.post(url + "/instance-segmentation", json=bodies["overlay image"], timeout=120)  # warm-up
        for _ in range(args.rounds):
            rates["in-process"].append(in_process_rate(pipeline, image, args.threshold, args.requests))
            for kind, (name, body) in kinds.items():
                ms, failed, rate = load(running[name][1], body, args.clients, args.requests)
                latencies[kind].append(ms)
                rates[kind].append(rate)
                failures += failed
    finally:
        for server, _ in running.values():
            server.terminate()
            server.wait(30)
    base = float(np.median(rates["in-process"]))
    instances = len(next(pipeline.predict(image, threshold=args.threshold)).boxes)
    print(f"{args.rounds} rounds of {args.requests} requests per kind, {args.clients} concurrent clients, "
          f"run_mode={args.run_mode}, {Path(image).name} ({instances} instances); failed requests: {failures}")
    rows = []
    for kind in kinds:
        ms = np.concatenate(latencies[kind])
        rows.append((kind, np.percentile(ms, 50), np.percentile(ms, 99), float(np.median(rates[kind]))))
    print(f"{'kind':34s} {'p50 ms':>7s} {'p99 ms':>7s} {'img/s':>6s} {'ratio':>6s}  (median of rounds; goal >= 0.9x)")
    print(f"{'in-process pipeline':34s} {'':>7s} {'':>7s} {base:6.2f} {1:5.2f}x")
    for kind, p50, p99, rate in rows:
        print(f"{kind:34s} {p50:7.0f} {p99:7.0f} {rate:6.2f} {rate / base:5.2f}x")
    print("\n| kind | p50 ms | p99 ms | images / s | × in-process (goal ≥ 0.9×) |\n|---|---|---|---|---|")
    print(f"| in-process pipeline | | | {base:.2f} | 1.00× |")
    for kind, p50, p99, rate in rows:
        print(f"| {kind} | {p50:.0f} | {p99:.0f} | {rate:.2f} | **{rate / base:.2f}×** |")

if __name__ == "__main__":
    main()
