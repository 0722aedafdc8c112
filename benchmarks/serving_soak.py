"""Bounded soak of the HTTP server on 127.0.0.1: thousands of mixed good and bad requests over images of several
sizes; no good request may fail, every bad one must get its 4xx; server RSS and latency are reported.

    OMP_NUM_THREADS=2 python benchmarks/serving_soak.py [--requests 2000] [--clients 4] [--home DIR]
                                                         [--model_dir DIR] [--untuned | --compare_untuned]

The model is the quick-start model (4 epochs, 32 images), built with
``tutorial_lib.quickstart.quickstart_model_dir`` into ``--home`` (default: a new temporary
``TUTORIAL_LIB_HOME``), unless ``--model_dir`` names an exported model. The server runs as
``python -m tutorial_lib --serve`` in a child process; ``--untuned`` serves with ``tune_memory=False`` (glibc's
default mmap threshold, no trimming) for comparison, and ``--compare_untuned`` runs both, one after the other;
the last lines are a markdown table of the runs (what ``run_all.py`` copies). Targets: RSS after the last request
<= 1.1x RSS after request 100, peak RSS <= 2x RSS once the model is loaded and warmed up, zero failed good
requests. (With fewer than 200 requests, the early reading is taken after request ``requests // 2``.)
"""
import argparse
import base64
import io
import json
import os
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from serving_load import quickstart_model, serve_config, wait_ready  # noqa: E402
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import requests

SIZES = "256x256,320x192,640x480,800x600,1024x768,1440x1080"  # width x height
UNTUNED_SERVER = """
import sys
from tutorial_lib import create_pipeline
from tutorial_lib.serving import serve
serve(lambda: create_pipeline(sys.argv[1]), port=int(sys.argv[2]), log_level="warning", tune_memory=False)
"""


def rss_mb(pid, peak=False):
    key = "VmHWM:" if peak else "VmRSS:"
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key):
                return int(line.split()[1]) / 1024
    return float("nan")


def encode(image, fmt):
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format=fmt, **({"quality": 90} if fmt == "JPEG" else {}))
    return buf.getvalue()


def png_header_only(width, height):
    import struct
    import zlib

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)) + \
        chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


def good_bodies(scene, rng, sizes):
    """Requests that must succeed: the training scene resized and tiled to several sizes, JPEG and PNG, with
    and without the overlay and polygons."""
    import cv2

    bodies = []
    for w, h in sizes:
        tiled = np.tile(scene, (h // scene.shape[0] + 1, w // scene.shape[1] + 1, 1))[:h, :w]
        resized = cv2.resize(scene, (w, h), interpolation=cv2.INTER_AREA)
        for image in (tiled, resized):
            for fmt in ("JPEG", "PNG"):
                data = base64.b64encode(encode(np.ascontiguousarray(image), fmt)).decode()
                options = {"visualize": bool(rng.integers(2)), "polygons": bool(rng.integers(4) == 0),
                           "threshold": float(rng.choice([0.05, 0.3, 0.5]))}
                bodies.append((f"good {fmt} {w}x{h}", {"image": data, **options}, 200))
    return bodies


def bad_bodies(scene, url):
    """Requests that must fail with the given status (and leave the server serving)."""
    jpeg = encode(scene, "JPEG")
    ok = base64.b64encode(jpeg).decode()
    return [
        ("bad base64", {"image": "not base64 !!"}, 400),
        ("bad not an image", {"image": base64.b64encode(b"hello, not pixels" * 20).decode()}, 400),
        ("bad truncated JPEG", {"image": base64.b64encode(jpeg[:len(jpeg) // 2]).decode()}, 400),
        ("bad header bomb", {"image": base64.b64encode(png_header_only(100_000, 100_000)).decode()}, 413),
        ("bad too many pixels", {"image": base64.b64encode(png_header_only(8000, 8000)).decode()}, 413),
        ("bad missing image", {"threshold": 0.5}, 400),
        ("bad unknown field", {"image": ok, "thresh": 0.5}, 400),
        ("bad threshold", {"image": ok, "threshold": 1.5}, 400),
        ("bad visualize", {"image": ok, "visualize": "yes"}, 400),
        ("bad loopback URL", {"image": url + "/health"}, 422),
        ("bad body too large", {"image": "A" * (21 * 1024 * 1024)}, 413),
        ("bad JSON", b"{not json", 400),
    ]


def send(url, body):
    """POST one JSON body (bytes); (status, whether the answer is PaddleX's envelope for it, seconds)."""
    start = time.perf_counter()
    try:
        response = requests.post(url + "/instance-segmentation", data=body, timeout=300,
                                 headers={"content-type": "application/json"})
        status = response.status_code
        ok_envelope = response.json().get("errorCode") == (0 if status == 200 else status)
    except (requests.RequestException, ValueError):
        status, ok_envelope = -1, False
    return status, ok_envelope, time.perf_counter() - start


def start_server(model_dir, workdir, untuned):
    from tutorial_lib.quickstart import exported_model_name
    from tutorial_lib.serving import free_port

    config = serve_config(model_dir, exported_model_name(model_dir), workdir)
    port = free_port()
    command = ([sys.executable, "-c", UNTUNED_SERVER, str(config), str(port)] if untuned else
               [sys.executable, "-m", "tutorial_lib", "--serve", "--pipeline", str(config), "--port", str(port)])
    log = open(Path(workdir) / "server.log", "w")
    server = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=dict(os.environ),
                              preexec_fn=_die_with_parent)
    return server, f"http://127.0.0.1:{port}", log


def _die_with_parent():
    """Linux: the server gets SIGTERM when this benchmark dies (killed by a test's timeout, say)."""
    import ctypes
    import signal

    try:
        ctypes.CDLL("libc.so.6").prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def soak(model_dir, n, clients, seed=0, untuned=False, good_fraction=0.4, sizes=SIZES, workdir=None):
    """Run the soak; returns a dict of measurements (also printed by :func:`main`)."""
    from tutorial_lib.quickstart import training_scene

    import cv2

    scene = cv2.imread(str(training_scene(model_dir)))[..., ::-1].copy()
    workdir = Path(workdir or tempfile.mkdtemp(prefix="serving_soak_"))
    server, url, log = start_server(model_dir, workdir, untuned)
    try:
        wait_ready(server, url)
        loaded = rss_mb(server.pid)
        rng = np.random.default_rng(seed)
        sizes = [tuple(int(v) for v in size.split("x")) for size in sizes.split(",")]
        good, bad = good_bodies(scene, rng, sizes), bad_bodies(scene, url)
        good = [(kind, json.dumps(body).encode(), status) for kind, body, status in good]
        bad = [(kind, body if isinstance(body, bytes) else json.dumps(body).encode(), status)
               for kind, body, status in bad]
        plan = []
        for _ in range(n):
            pool = good if rng.random() < good_fraction else bad
            plan.append(pool[int(rng.integers(len(pool)))])
        results, marks, peak_seen, early = [None] * n, {}, [loaded], min(100, n // 2)
        done, lock, stop = [0], threading.Lock(), threading.Event()

        def sample():
            while not stop.wait(0.25):
                peak_seen.append(rss_mb(server.pid))

        def one(k):
            kind, body, expected = plan[k]
            status, envelope_ok, seconds = send(url, body)
            results[k] = (kind, expected, status, envelope_ok, seconds)
            with lock:
                done[0] += 1
                if done[0] in (early, n):
                    marks[done[0]] = rss_mb(server.pid)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        started = time.perf_counter()
        with ThreadPoolExecutor(clients) as pool:
            list(pool.map(one, range(n)))
        elapsed = time.perf_counter() - started
        stop.set()
        sampler.join()
        alive = requests.get(url + "/health/ready", timeout=5).status_code == 200
        peak = rss_mb(server.pid, peak=True)
    finally:
        server.terminate()
        server.wait(60)
        log.close()
    good_runs = [r for r in results if r[0].startswith("good")]
    latencies = np.array([r[4] for r in good_runs]) * 1000
    return {
        "requests": n, "good": len(good_runs), "bad": n - len(good_runs), "clients": clients,
        "seconds": elapsed, "alive": alive,
        "good_failed": [r[:3] for r in good_runs if r[2] != 200 or not r[3]],
        "bad_wrong": [r[:3] for r in results if not r[0].startswith("good") and (r[2] != r[1] or not r[3])],
        "p50_ms": float(np.percentile(latencies, 50)), "p99_ms": float(np.percentile(latencies, 99)),
        "rss_loaded_mb": loaded, "early": early, "rss_early_mb": marks.get(early), "rss_last_mb": marks.get(n),
        "rss_peak_mb": max(peak, max(peak_seen)), "untuned": untuned,
    }


def report(m):
    print(f"{m['requests']} requests ({m['good']} good, {m['bad']} bad), {m['clients']} clients, "
          f"{m['seconds']:.0f} s, server {'untuned' if m['untuned'] else 'tuned (mmap threshold + trim)'}")
    print(f"good requests failed: {len(m['good_failed'])} {m['good_failed'][:5]}")
    print(f"bad requests with the wrong answer: {len(m['bad_wrong'])} {m['bad_wrong'][:5]}")
    print(f"server still ready afterwards: {m['alive']}")
    print(f"good-request latency: p50 {m['p50_ms']:.0f} ms, p99 {m['p99_ms']:.0f} ms")
    print(f"RSS: loaded+warm {m['rss_loaded_mb']:.0f} MB, after request {m['early']} {m['rss_early_mb']:.0f} MB, "
          f"after request {m['requests']} {m['rss_last_mb']:.0f} MB, peak {m['rss_peak_mb']:.0f} MB")
    print(f"RSS last / after {m['early']}: {m['rss_last_mb'] / m['rss_early_mb']:.3f}x (target <= 1.1x); "
          f"peak / loaded: {m['rss_peak_mb'] / m['rss_loaded_mb']:.2f}x (target <= 2x)")


def markdown(runs):
    n = runs[0]["requests"]
    print(f"\n| server | requests (good / bad) | good failed | bad with a wrong answer | p50 / p99 ms (good) | "
          f"RSS loaded | after {runs[0]['early']} | after {n:,} | last / {runs[0]['early']} (≤ 1.1×) | "
          f"peak / loaded (≤ 2×) |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for m in runs:
        server = ("glibc defaults (`--untuned`)" if m["untuned"] else
                  "`tune_memory` (default: mmap threshold 4 MiB + trim when idle)")
        print(f"| {server} | {m['requests']:,} ({m['good']:,} / {m['bad']:,}) | **{len(m['good_failed'])}** | "
              f"**{len(m['bad_wrong'])}** | {m['p50_ms']:,.0f} / {m['p99_ms']:,.0f} | {m['rss_loaded_mb']:,.0f} MB | "
              f"{m['rss_early_mb']:,.0f} MB | {m['rss_last_mb']:,.0f} MB | "
              f"**{m['rss_last_mb'] / m['rss_early_mb']:.2f}×** | "
              f"**{m['rss_peak_mb'] / m['rss_loaded_mb']:.2f}×** (peak {m['rss_peak_mb']:,.0f} MB) |")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--good_fraction", type=float, default=0.4)
    parser.add_argument("--home", help="TUTORIAL_LIB_HOME to build / reuse the quick-start model in")
    parser.add_argument("--model_dir", help="an exported model instead of the quick-start model")
    parser.add_argument("--untuned", action="store_true", help="serve with tune_memory=False")
    parser.add_argument("--compare_untuned", action="store_true", help="soak the tuned, then the untuned server")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--sizes", default=SIZES, help="image sizes of the good requests, WxH,WxH,...")
    args = parser.parse_args(argv)
    model_dir = args.model_dir or quickstart_model(args.home or tempfile.mkdtemp(prefix="tutorial_lib_home_"))
    runs = []
    for untuned in ([False, True] if args.compare_untuned else [args.untuned]):
        runs.append(soak(model_dir, args.requests, args.clients, args.seed, untuned, args.good_fraction, args.sizes))
        report(runs[-1])
    markdown(runs)
    return 0 if all(not m["good_failed"] and not m["bad_wrong"] and m["alive"] for m in runs) else 1


if __name__ == "__main__":
    sys.exit(main())
