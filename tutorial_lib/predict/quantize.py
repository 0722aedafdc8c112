"""INT8 for edge deployment: post-training static quantization of ``inference.onnx`` with ONNX Runtime's tools.

    from tutorial_lib.predict.quantize import quantize_int8
    quantize_int8("output/best_model/inference", "dataset/images")     # writes inference_int8.onnx beside it
    Predictor("output/best_model/inference", run_mode="onnxruntime_int8")  # or run_mode="openvino_int8"

CLI twin: ``python -m tutorial_lib quantize --model_dir DIR --calibration IMAGES [--max_images 32]``.

Static quantization fixes every activation's INT8 range in advance from *calibration images*: the model runs in
float on them and the min / max seen at each tensor becomes its range. The images should look like the ones the
model will see (here: the split it was trained on). Weights are quantized per output channel (signed), activations
per tensor (unsigned), in the QDQ format -- QuantizeLinear / DequantizeLinear pairs around each quantized operator,
which ONNX Runtime and OpenVINO both fuse into integer kernels (fast with AVX512-VNNI / AMX). Only ``Conv`` and
``MatMul`` are quantized: they hold nearly all of the weights and the arithmetic; the rest (softmax, layer norm,
``grid_sample`` of the deformable attention, the box and mask heads' sigmoids) stays in float, which keeps the
detections close to FP32's (docs/benchmarks.md measures size, latency and the mask AP change).

A model that does not convert to ONNX (the paddledet R-CNN family) cannot be quantized this way; the error says so.
"""
import shutil
import tempfile
from pathlib import Path

import numpy as np

from ..errors import UserError
from .backends import ensure_onnx_model
from .inputs import iter_sources
from .onnx_export import INT8_NAME, int8_path, onnx_path, require_int8
from .predictor import Predictor, make_feed

OP_TYPES = ("Conv", "MatMul")


def _feeds(model_dir, images, max_images):
    """Preprocessed feed dicts (``image``, ``im_shape``, ``scale_factor``), one image each, as the predictor makes."""
    import yaml

    info = yaml.safe_load((Path(str(model_dir)) / "inference.yml").read_text(encoding="utf-8"))
    feeds = []
    for _, load in iter_sources(images):
        feeds.append(make_feed([load()], info["Preprocess"]))
        if len(feeds) == max_images:
            break
    if not feeds:
        raise UserError(f"no calibration images found in {images}")
    return feeds


def quantize_int8(model_dir, images, max_images=32, progress=True):
    """Quantize ``model_dir``'s ONNX model to INT8, calibrated on up to ``max_images`` of ``images`` (a folder,
    a file, a list of paths or RGB arrays); returns the path of ``inference_int8.onnx``. The ONNX model is made
    first (paddle2onnx) when it is missing."""
    try:
        from onnxruntime.quantization import (CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType,
                                              quantize_static)
        from onnxruntime.quantization.shape_inference import quant_pre_process
    except ImportError:
        raise UserError("INT8 quantization needs onnxruntime and onnx (pip install onnxruntime onnx)") from None

    source = ensure_onnx_model(model_dir)
    feeds = _feeds(model_dir, images, max_images)

    class Reader(CalibrationDataReader):
        def __init__(self):
            self._items = iter(feeds)
            self._bar = None
            if progress:
                from tqdm.auto import tqdm

                self._bar = tqdm(total=len(feeds), desc="calibrating", unit="image")

        def get_next(self):
            item = next(self._items, None)
            if self._bar is not None:
                self._bar.update(item is not None)
                if item is None:
                    self._bar.close()
            return item

    target = int8_path(model_dir)
    with tempfile.TemporaryDirectory() as tmp:
        # paddle2onnx keeps the weights in Constant nodes and BatchNormalization separate; ORT's pre-processing
        # folds BN into the convolutions and turns the weights into initializers, which quantize_static needs
        # to quantize them (without it only the activations get Q/DQ pairs and the model does not shrink)
        prepared = Path(tmp) / "prepared.onnx"
        quant_pre_process(str(source), str(prepared), skip_symbolic_shape=True)
        partial = Path(tmp) / INT8_NAME
        quantize_static(str(prepared), str(partial), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                        op_types_to_quantize=list(OP_TYPES), calibrate_method=CalibrationMethod.MinMax)
        shutil.move(str(partial), str(target))  # never a half-written model under the final name
    return target


def int8_tradeoff(model_dir, calibration, image, repeats=3, max_images=16):
    """Notebook 07's comparison: quantize ``model_dir`` (once, calibrated on ``calibration``) and return one row per
    run mode -- FP32 and INT8 on ONNX Runtime and OpenVINO -- with the model file's size and the median end-to-end
    time of predicting ``image`` (after one warm-up)."""
    import time


    try:
        path = require_int8(model_dir)
    except UserError:  # none yet, or older than the exported model
        path = quantize_int8(model_dir, calibration, max_images=max_images)
    rows = []
    for run_mode in ("onnxruntime", "onnxruntime_int8", "openvino", "openvino_int8"):
        predictor = Predictor(model_dir, run_mode=run_mode, threshold=0.0)
        next(predictor.predict(image))  # warm-up
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            next(predictor.predict(image))
            times.append((time.perf_counter() - start) * 1000)
        int8 = run_mode.endswith("int8")
        rows.append({"run_mode": run_mode, "precision": "INT8" if int8 else "FP32",
                     "model MB": round(model_size_mb(path if int8 else onnx_path(model_dir)), 1),
                     "ms per image": round(float(np.median(times)), 1)})
    return rows


def model_size_mb(path):
    return Path(str(path)).stat().st_size / 1e6


__all__ = ["INT8_NAME", "int8_path", "int8_tradeoff", "model_size_mb", "quantize_int8", "require_int8"]
