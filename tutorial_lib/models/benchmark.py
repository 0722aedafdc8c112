"""Measure models on this machine (step 3): parameter counts, forward latency, exported size.

Shared by notebook 03 and ``benchmarks/mask_rtdetr.py``; what PaddleX publishes stays in the registry.
"""
import os
import tempfile
import time

import numpy as np

from ..paddle_env import import_paddle


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


def inference_predictor(prefix, use_mkldnn=False, threads=None):
    """A ``paddle.inference`` CPU predictor for ``prefix.pdmodel/.pdiparams``."""
    from paddle import inference

    config = inference.Config(prefix + ".pdmodel", prefix + ".pdiparams")
    config.disable_gpu()
    config.set_cpu_math_library_num_threads(threads or int(os.environ.get("OMP_NUM_THREADS", "1")))
    config.disable_glog_info()
    config.enable_mkldnn() if use_mkldnn else config.disable_mkldnn()
    return inference.create_predictor(config)


def measure_mask_rtdetr(size, num_classes=10, input_size=640, repeats=3, export=False, onednn=True, workdir=None):
    """One row: params, dygraph forward ms, and with ``export`` the exported MB and Paddle Inference ms."""
    paddle = import_paddle()
    from .mask_rtdetr import build_mask_rtdetr
    from .mask_rtdetr.export import export_model

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
            for use_mkldnn in (False, True) if onednn else (False,):
                predictor = inference_predictor(prefix, use_mkldnn)
                for name in predictor.get_input_names():
                    predictor.get_input_handle(name).copy_from_cpu(feeds[name])
                row["onednn_ms" if use_mkldnn else "inference_ms"] = median_ms(predictor.run, repeats)
    return row
