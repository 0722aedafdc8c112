"""Validate ``Global.device`` strings against what the installed PaddlePaddle can use.

Kinds, as in PaddleX: ``cpu``, ``gpu`` (NVIDIA, CUDA build), ``xpu`` (Kunlunxin), ``npu`` (Ascend), ``mlu``
(Cambricon), ``dcu`` (Hygon, ROCm build), each with optional ids: ``gpu:0``, ``xpu:0,1``. A kind the installed
Paddle was not compiled for is refused with the package to install, before any work starts.
"""
import re

from ..errors import UserError

KINDS = ("cpu", "gpu", "xpu", "npu", "mlu", "dcu")
_SPEC = re.compile(r"^(" + "|".join(KINDS) + r")(?::(\d+(?:,\d+)*))?$")

# What each accelerator is called and what to install for it (PaddlePaddle 2.6 line).
HARDWARE = {
    "gpu": ("NVIDIA GPU", "paddlepaddle-gpu==2.6.2 (CUDA build; see README, environment.yml)"),
    "xpu": ("Kunlunxin XPU", "the XPU build of PaddlePaddle (paddlepaddle-xpu, from PaddlePaddle's XPU package index)"),
    "npu": ("Ascend NPU", "PaddlePaddle plus the Ascend plugin paddle-custom-npu (PaddleCustomDevice)"),
    "mlu": ("Cambricon MLU", "PaddlePaddle plus the Cambricon plugin paddle-custom-mlu (PaddleCustomDevice)"),
    "dcu": ("Hygon DCU", "the ROCm (DCU) build of PaddlePaddle (PaddlePaddle's DCU install guide)"),
}
_CUSTOM = ("npu", "mlu")  # PaddleCustomDevice plugins: paddle.device.get_all_custom_device_type()


def parse_device(spec):
    """``"gpu:0,1"`` -> ``("gpu", [0, 1])``; ``"cpu"`` -> ``("cpu", [])``; ``"xpu"`` -> ``("xpu", [0])``."""
    text = str(spec).strip().lower().replace(" ", "")
    match = _SPEC.match(text)
    if not match:
        raise UserError(f"Global.device={spec!r} is not a device; use cpu, gpu, gpu:0, gpu:0,1 "
                        "(or xpu / npu / mlu / dcu with ids the same way)")
    kind, ids = match.group(1), match.group(2)
    if kind == "cpu":
        if ids:
            raise UserError(f"Global.device={spec!r}: cpu takes no ids; write cpu")
        return "cpu", []
    ids = [int(i) for i in ids.split(",")] if ids else [0]
    if len(set(ids)) != len(ids):
        raise UserError(f"Global.device={spec!r} lists a {kind.upper()} twice")
    return kind, ids


def _paddle():
    from ..paddle_env import import_paddle

    return import_paddle()


def paddle_build(paddle=None):
    """What the installed Paddle was compiled for, in words: ``"paddlepaddle 2.6.2, CPU build"``."""
    paddle = paddle or _paddle()
    device = paddle.device
    parts = []
    if device.is_compiled_with_rocm():
        parts.append("ROCm")
    elif device.is_compiled_with_cuda():
        parts.append("CUDA")
    if device.is_compiled_with_xpu():
        parts.append("XPU")
    parts += [f"plugin {name}" for name in device.get_all_custom_device_type() or []]
    return f"paddlepaddle {paddle.__version__}, {' + '.join(parts) or 'CPU'} build"


def compiled_with(kind, paddle=None):
    """Whether the installed Paddle was built for ``kind`` (``gpu`` on a ROCm build counts: Paddle drives DCUs as
    its gpu places)."""
    if kind == "cpu":
        return True
    device = (paddle or _paddle()).device
    if kind == "gpu":
        return bool(device.is_compiled_with_cuda() or device.is_compiled_with_rocm())
    if kind == "dcu":
        return bool(device.is_compiled_with_rocm())
    if kind == "xpu":
        return bool(device.is_compiled_with_xpu())
    return kind in (device.get_all_custom_device_type() or [])


def device_count(kind, paddle=None):
    """Number of ``kind`` devices this Paddle sees (0 when it was not compiled for ``kind``)."""
    paddle = paddle or _paddle()
    if not compiled_with(kind, paddle):
        return 0
    if kind in ("gpu", "dcu"):
        return int(paddle.device.cuda.device_count())
    if kind == "xpu":
        return int(paddle.device.xpu.device_count())
    return sum(1 for name in paddle.device.get_available_custom_device() or [] if name.split(":")[0] == kind)


def visible_gpu_count():
    """Number of GPUs this PaddlePaddle build can use (0 for the CPU package)."""
    return device_count("gpu")


def validate_device(spec, gpu_count=None, counts=None):
    """Return the normalised device string, or raise a UserError that says what to do instead.

    ``counts`` (``{"xpu": 2, ...}``) and ``gpu_count`` replace what the installed Paddle reports (tests, dry runs);
    a kind missing from them is asked of Paddle. ``dcu`` normalises to ``gpu:...``: a ROCm build of Paddle drives
    DCUs as its gpu places, so the engine, the predictor and ``paddle.set_device`` take them as ``gpu``.
    """
    kind, ids = parse_device(spec)
    if kind == "cpu":
        return "cpu"
    counts = dict(counts or {})
    if gpu_count is not None:
        counts["gpu"] = gpu_count
    name, install = HARDWARE[kind]
    build = None
    if kind in counts:
        count = int(counts[kind])
        built = count > 0
    else:
        paddle = _paddle()
        build = paddle_build(paddle)
        built = compiled_with(kind, paddle)
        count = device_count(kind, paddle) if built else 0
    if kind == "gpu" and count == 0:
        raise UserError(f"Global.device={spec!r} asks for GPU(s), but no GPU is available to PaddlePaddle here "
                        f"({build or 'CPU build or no CUDA device'}); use -o Global.device=cpu, or install "
                        "paddlepaddle-gpu==2.6.2 on a GPU machine (see README)")
    if not built:
        built_as = f" ({build})" if build else ""
        raise UserError(f"Global.device={spec!r} asks for a {name}, but the installed PaddlePaddle{built_as} was not "
                        f"compiled for it; install {install}, or use -o Global.device=cpu")
    if count == 0:
        raise UserError(f"Global.device={spec!r} asks for a {name}, but PaddlePaddle ({build}) sees none; check "
                        "the driver and the visible-devices setting, or use -o Global.device=cpu")
    missing = [i for i in ids if i >= count]
    if missing:
        raise UserError(f"Global.device={spec!r} asks for {kind.upper()} id(s) {missing}, but only {count} "
                        f"{kind.upper()}(s) are visible (ids 0..{count - 1}); use e.g. -o Global.device={kind}:0")
    return ("gpu" if kind == "dcu" else kind) + ":" + ",".join(map(str, ids))


def paddle_device(device):
    """``paddle.set_device`` string of a validated device's first id: ``"xpu:0,1"`` -> ``"xpu:0"``; ``"cpu"``."""
    kind, ids = parse_device(device)
    if kind == "cpu":
        return "cpu"
    return f"{'gpu' if kind == 'dcu' else kind}:{ids[0]}"
