"""Bounded load on the HTTP server (127.0.0.1): concurrent clients, p50/p99 latency, throughput, failures,
and the ratio to the in-process pipeline's throughput (goal >= 0.9x, zero failed requests).

    OMP_NUM_THREADS=2 python benchmarks/serving_load.py --model_dir DIR [--clients 4] [--requests 40]
"""
import argparse
import base64
import os
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import requests
import yaml

import tutorial_lib as tl

DEMO = Path(__file__).resolve().parents[1] / "data" / "remotesensing_demo.png"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model_dir", help="exported model (default: the quick-start model)")
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--requests", type=int, default=40)
    parser.add_argument("--run_mode", default="mkldnn")
    args = parser.parse_args()
    pipeline = tl.create_pipeline("instance_segmentation", model_dir=args.model_dir, run_mode=args.run_mode)
    image = str(DEMO)
    next(pipeline.predict(image))  # warm-up
    start = time.perf_counter()
    for _ in range(args.requests):
        next(pipeline.predict(image))
    in_process = args.requests / (time.perf_counter() - start)

    config = tl.get_pipeline_config("instance_segmentation", Path("output") / "serving_load")
    cfg = yaml.safe_load(config.read_text())
    cfg["SubModules"]["InstanceSegmentation"]["model_dir"] = str(Path(pipeline.predictor.model_dir).resolve())
    config.write_text(yaml.safe_dump(cfg))
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "tutorial_lib", "--serve", "--pipeline", str(config),
                               "--run_mode", args.run_mode, "--port", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=dict(os.environ))
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(120):
            try:
                if requests.get(url + "/health", timeout=1).ok:
                    break
            except requests.RequestException:
                time.sleep(0.5)
        body = {"image": base64.b64encode(DEMO.read_bytes()).decode()}
        requests.post(url + "/instance-segmentation", json=body, timeout=120)  # warm-up

        def one(_):
            t0 = time.perf_counter()
            try:
                ok = requests.post(url + "/instance-segmentation", json=body, timeout=120).json()["errorCode"] == 0
            except (requests.RequestException, ValueError):
                ok = False
            return time.perf_counter() - t0, ok

        start = time.perf_counter()
        with ThreadPoolExecutor(args.clients) as pool:
            results = list(pool.map(one, range(args.requests)))
        elapsed = time.perf_counter() - start
    finally:
        server.terminate()
        server.wait(30)
    latencies = np.array([r[0] for r in results]) * 1000
    failures = sum(not r[1] for r in results)
    served = args.requests / elapsed
    print(f"{args.requests} requests, {args.clients} concurrent clients, run_mode={args.run_mode}")
    print(f"latency p50 {np.percentile(latencies, 50):.0f} ms, p99 {np.percentile(latencies, 99):.0f} ms; "
          f"failed {failures}")
    print(f"throughput served {served:.2f} img/s, in-process {in_process:.2f} img/s, ratio {served / in_process:.2f}x "
          "(goal >= 0.9x)")


if __name__ == "__main__":
    main()
