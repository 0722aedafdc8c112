"""Measure models on this machine (step 3): parameter counts, forward latency, exported size.

Shared by notebooks 03 and 07 and ``benchmarks/``; what PaddleX publishes stays in the registry. Exported models
run through the predictor's own backends (:func:`tutorial_lib.predict.backends.create_backend`), so a latency
measured here is the latency the predictor has.
"""
import os
import tempfile
import time

import numpy as np

from .paddle_env import import_paddle
from .predict.backends import create_backend


def median_ms(fn, repeats=3, warmup=1):
    """Median wall time of ``fn()`` in milliseconds after ``warmup`` untimed calls."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000.0)
    return float(np.median(times))


def count_parameters(model):
    """Total numel of all parameters (BatchNorm running statistics included, as Paddle stores them)."""
    return int(sum(int(np.prod(p.shape)) for p in model.parameters()))


def dummy_feeds(input_size, seed=0):
    rng = np.random.default_rng(seed)
    return {"image": rng.uniform(0, 1, (1, 3, input_size, input_size)).astype("float32"),
            "im_shape": np.array([[input_size, input_size]], "float32"),
            "scale_factor": np.array([[1.0, 1.0]], "float32")}


def measure_mask_rtdetr(size, num_classes=10, input_size=640, repeats=3, export=False, onednn=True, workdir=None):
    """One row: params, dygraph forward ms, and with ``export`` the exported MB and Paddle Inference ms."""
    paddle = import_paddle()
    from .models.mask_rtdetr import build_mask_rtdetr
    from .models.mask_rtdetr.export import export_model

    paddle.seed(0)
    model = build_mask_rtdetr(size, num_classes=num_classes, with_loss=False)
    model.eval()
    feeds = dummy_feeds(input_size)
    tensors = {k: paddle.to_tensor(v) for k, v in feeds.items()}

    def forward():
        with paddle.no_grad():
            model(tensors)["bbox"].numpy()

    row = {"model": f"Mask-RT-DETR-{size}", "params": count_parameters(model), "input_size": input_size,
           "dygraph_ms": median_ms(forward, repeats)}
    if export:
        with tempfile.TemporaryDirectory(dir=workdir) as tmp:
            prefix = os.path.join(tmp, "inference")
            export_model(model, prefix, input_size, input_size)
            row["export_mb"] = sum(os.path.getsize(prefix + ext) for ext in (".pdmodel", ".pdiparams")) / 2 ** 20
            for run_mode in ("paddle", "mkldnn") if onednn else ("paddle",):
                backend = create_backend(tmp, "cpu", run_mode)
                row["onednn_ms" if run_mode == "mkldnn" else "inference_ms"] = median_ms(lambda: backend.run(feeds),
                                                                                       repeats)
    return row
