"""Exported Paddle model -> ONNX (``paddle2onnx``), for the ONNX Runtime backend of high-performance inference.

    from tutorial_lib.predict.onnx_export import convert_to_onnx
    convert_to_onnx("output/best_model/inference")            # writes inference.onnx next to inference.pdmodel

CLI twin (PaddleX's flags): ``python -m tutorial_lib --paddle2onnx --paddle_model_dir DIR --onnx_model_dir OUT``.

paddle2onnx aborts the whole process (SIGABRT) when a model holds an operator it cannot map, so the conversion runs
in a child process; its report is turned into an :class:`UnsupportedModelError` naming those operators. The converted
model is loaded once in ONNX Runtime before it is kept. Which models convert (paddle2onnx 1.3.1, onnxruntime
1.20.1): Mask-RT-DETR (all sizes); not the paddledet R-CNN family (Mask R-CNN, Cascade Mask R-CNN:
``generate_proposals_v2``, ``distribute_fpn_proposals``, tensor arrays), and SOLOv2 converts but does not load
in ONNX Runtime -- see docs/benchmarks.md for the table ``benchmarks/hpi.py --survey`` prints.
"""
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from ..errors import UserError

INT8_NAME = "inference_int8.onnx"  # the post-training INT8 model (quantize.py) beside inference.onnx
DEFAULT_OPSET = 16  # grid_sample (Mask-RT-DETR's deformable attention) needs opset 16


class UnsupportedModelError(UserError):
    """The model holds operators paddle2onnx cannot convert; ``ops`` lists them."""

    def __init__(self, message, ops=()):
        super().__init__(message)
        self.ops = list(ops)


def _require_paddle2onnx():
    """Fail early when paddle2onnx is missing; it is imported (with paddle) only in the converting child."""
    from importlib.util import find_spec

    if find_spec("paddle2onnx") is None:
        raise UserError("ONNX export needs paddle2onnx (pip install paddle2onnx==1.3.1 onnxruntime)")


def onnx_path(model_dir):
    return Path(str(model_dir)) / "inference.onnx"


def int8_path(model_dir):
    return Path(str(model_dir)) / INT8_NAME


def require_int8(model_dir):
    """The INT8 model of ``model_dir``, or a clear error saying how to make it (also when the Paddle model was
    exported again after it was quantized: the INT8 model would silently run the old weights)."""
    path = int8_path(model_dir)
    how = ("make it with quantize_int8(model_dir, calibration_images) or python -m tutorial_lib quantize "
           "--model_dir DIR --calibration IMAGES")
    if not path.is_file():
        raise UserError(f"{model_dir} has no {INT8_NAME}; {how}")
    params = Path(str(model_dir)) / "inference.pdiparams"
    if params.is_file() and params.stat().st_mtime > path.stat().st_mtime:
        raise UserError(f"{path} is older than the model exported in {model_dir}; quantize again: {how}")
    return path


def is_current(model_dir):
    """True when ``inference.onnx`` exists and is newer than ``inference.pdiparams`` (re-export invalidates it)."""
    onnx, params = onnx_path(model_dir), Path(str(model_dir)) / "inference.pdiparams"
    return onnx.is_file() and (not params.is_file() or onnx.stat().st_mtime >= params.stat().st_mtime)


_UNSUPPORTED = {}  # (model files, their mtimes, opset) -> the UnsupportedModelError paddle2onnx gave them


def _model_key(model_dir, opset_version):
    files = [Path(str(model_dir)).resolve() / n for n in ("inference.pdmodel", "inference.pdiparams")]
    return tuple((str(f), f.stat().st_mtime_ns if f.is_file() else None) for f in files) + (opset_version,)


def known_unsupported(model_dir, opset_version=DEFAULT_OPSET):
    """The :class:`UnsupportedModelError` an earlier conversion of these very model files raised in this process,
    or None: a model that does not convert is not sent to paddle2onnx again (each try takes seconds)."""
    return _UNSUPPORTED.get(_model_key(model_dir, opset_version))


def convert_to_onnx(model_dir, save_dir=None, opset_version=DEFAULT_OPSET, timeout_s=600):
    """Convert ``model_dir/inference.pdmodel`` + ``.pdiparams`` to ``save_dir/inference.onnx`` (default: in
    ``model_dir``) and copy ``inference.yml`` beside it, so ``save_dir`` is a model folder of its own.
    Returns the ``.onnx`` path; raises :class:`UnsupportedModelError` when operators cannot be mapped."""
    key = _model_key(model_dir, opset_version)
    if key in _UNSUPPORTED:
        known = _UNSUPPORTED[key]
        raise UnsupportedModelError(str(known), known.ops)
    try:
        return _convert(model_dir, save_dir, opset_version, timeout_s)
    except UnsupportedModelError as exc:
        _UNSUPPORTED[key] = exc
        raise


def _convert(model_dir, save_dir, opset_version, timeout_s):
    _require_paddle2onnx()
    model_dir = Path(str(model_dir))
    save_dir = Path(str(save_dir)) if save_dir else model_dir
    model, params = model_dir / "inference.pdmodel", model_dir / "inference.pdiparams"
    missing = [f.name for f in (model, params) if not f.is_file()]
    if missing:
        raise UserError(f"{model_dir} is not an exported Paddle model (missing {', '.join(missing)})")
    save_dir.mkdir(parents=True, exist_ok=True)
    target = save_dir / "inference.onnx"
    partial = save_dir / f".inference.onnx.{os.getpid()}.part"
    code = ("import sys\nfrom tutorial_lib.paddle_env import import_paddle\nimport_paddle()\nimport paddle2onnx\n"
            "paddle2onnx.export(sys.argv[1], sys.argv[2], sys.argv[3], opset_version=int(sys.argv[4]),"
            " auto_upgrade_opset=True, verbose=True, enable_onnx_checker=True)\n")
    try:
        proc = subprocess.run([sys.executable, "-c", code, str(model), str(params), str(partial), str(opset_version)],
                              capture_output=True, text=True, timeout=timeout_s)
        report = proc.stdout + proc.stderr
        if proc.returncode != 0 or not partial.is_file():
            ops = _unsupported_ops(report)
            name = _model_name(model_dir)
            if ops:
                raise UnsupportedModelError(f"{name} cannot be converted to ONNX: paddle2onnx has no mapping for "
                                            f"{', '.join(ops)}; use run_mode=mkldnn (CPU) or paddle instead", ops)
            tail = " | ".join(line.strip() for line in report.strip().splitlines()[-3:])
            raise UserError(f"paddle2onnx failed on {name} (exit {proc.returncode}): {tail}")
        _check_loads(partial, model_dir)
        os.replace(partial, target)
    except subprocess.TimeoutExpired:
        raise UserError(f"paddle2onnx did not finish within {timeout_s} s on {model_dir}") from None
    finally:
        partial.unlink(missing_ok=True)
    if save_dir.resolve() != model_dir.resolve() and (model_dir / "inference.yml").is_file():
        shutil.copy2(model_dir / "inference.yml", save_dir / "inference.yml")
    return target


def _check_loads(path, model_dir):
    """paddle2onnx can write a graph ONNX Runtime refuses (SOLOv2: a shape that is not 1-D): load it once."""
    try:
        import onnxruntime as ort
    except ImportError:
        return
    try:
        ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own Fail/InvalidGraph types
        reason = str(exc).split(":", 2)[-1].strip().splitlines()[0]
        raise UnsupportedModelError(f"{_model_name(model_dir)} converts to ONNX but ONNX Runtime cannot load it "
                                    f"({reason}); use run_mode=mkldnn (CPU) or paddle instead") from None


def _unsupported_ops(report):
    match = re.search(r"operators not supported yet, including ([^\n]*)", report)
    return sorted({op.strip() for op in match.group(1).split(",") if op.strip()}) if match else []


def _model_name(model_dir):
    import yaml

    info_file = Path(model_dir) / "inference.yml"
    if info_file.is_file():
        info = yaml.safe_load(info_file.read_text(encoding="utf-8")) or {}
        return info.get("Global", {}).get("model_name") or str(model_dir)
    return str(model_dir)
