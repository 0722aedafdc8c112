"""Mask-RT-DETR benchmark: per size, parameter count, CPU forward time (dygraph, and the exported model
through paddle.inference with and without oneDNN) and exported model size.

    PYTHONPATH=. OMP_NUM_THREADS=2 python benchmarks/mask_rtdetr.py --sizes S M --repeats 3
"""
import argparse
import os
import tempfile
import time

import scipy  # noqa: F401  (import before paddle: zlib clash)
import numpy as np
import paddle

from tutorial_lib.models.mask_rtdetr import build_mask_rtdetr
from tutorial_lib.models.mask_rtdetr.export import export_model


def _time(fn, repeats):
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000.0)
    return float(np.median(times))


def _predictor(prefix, use_mkldnn, threads):
    from paddle import inference
    config = inference.Config(prefix + ".pdmodel", prefix + ".pdiparams")
    config.disable_gpu()
    config.set_cpu_math_library_num_threads(threads)
    config.disable_glog_info()
    if use_mkldnn:
        config.enable_mkldnn()
    else:
        config.disable_mkldnn()
    return inference.create_predictor(config)


def bench_size(size, repeats, threads, workdir, feeds):
    paddle.seed(0)
    model = build_mask_rtdetr(size, with_loss=False)
    model.eval()
    n_params = sum(int(np.prod(p.shape)) for p in model.parameters())
    row = {"size": size, "params": n_params}
    tensors = {k: paddle.to_tensor(v) for k, v in feeds.items()}

    def dygraph():
        with paddle.no_grad():
            model(tensors)["bbox"].numpy()
    row["dygraph_ms"] = _time(dygraph, repeats)

    prefix = os.path.join(workdir, f"mask_rtdetr_{size.lower()}")
    export_model(model, prefix)
    row["export_MB"] = sum(os.path.getsize(prefix + ext) for ext in (".pdmodel", ".pdiparams")) / 2 ** 20
    for use_mkldnn in (False, True):
        try:
            pred = _predictor(prefix, use_mkldnn, threads)
            for name in pred.get_input_names():
                pred.get_input_handle(name).copy_from_cpu(feeds[name])
            row[f"infer_ms_{'onednn' if use_mkldnn else 'plain'}"] = _time(pred.run, repeats)
        except Exception as exc:  # oneDNN may be unavailable in some builds
            row[f"infer_ms_{'onednn' if use_mkldnn else 'plain'}"] = f"n/a ({type(exc).__name__})"
    return row


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", nargs="+", default=["S", "M", "L", "X", "H"])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=int(os.environ.get("OMP_NUM_THREADS", "2")))
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    feeds = {"image": rng.uniform(0, 1, (1, 3, 640, 640)).astype("float32"),
             "im_shape": np.array([[640.0, 640.0]], "float32"),
             "scale_factor": np.array([[1.0, 1.0]], "float32")}
    print(f"{'size':4s} {'params':>12s} {'dygraph ms':>11s} {'infer ms':>10s} {'oneDNN ms':>10s} {'export MB':>10s}")
    with tempfile.TemporaryDirectory() as workdir:
        for size in args.sizes:
            r = bench_size(size.upper(), args.repeats, args.threads, workdir, feeds)
            fmt = lambda v: f"{v:10.1f}" if isinstance(v, float) else f"{v:>10s}"  # noqa: E731
            print(f"{r['size']:4s} {r['params']:12,d} {r['dygraph_ms']:11.1f} {fmt(r['infer_ms_plain'])} "
                  f"{fmt(r['infer_ms_onednn'])} {r['export_MB']:10.1f}", flush=True)


if __name__ == "__main__":
    main()
