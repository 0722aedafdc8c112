"""Validate ``Global.device`` strings (``cpu``, ``gpu``, ``gpu:0``, ``gpu:0,1``) against this machine."""
import re

from ..errors import UserError

_SPEC = re.compile(r"^(cpu|gpu)(?::(\d+(?:,\d+)*))?$")


def parse_device(spec):
    """``"gpu:0,1"`` -> ``("gpu", [0, 1])``; ``"cpu"`` -> ``("cpu", [])``; ``"gpu"`` -> ``("gpu", [0])``."""
    text = str(spec).strip().lower().replace(" ", "")
    match = _SPEC.match(text)
    if not match:
        raise UserError(f"Global.device={spec!r} is not a device; use cpu, gpu, gpu:0 or gpu:0,1")
    kind, ids = match.group(1), match.group(2)
    if kind == "cpu":
        if ids:
            raise UserError(f"Global.device={spec!r}: cpu takes no ids; write cpu")
        return "cpu", []
    ids = [int(i) for i in ids.split(",")] if ids else [0]
    if len(set(ids)) != len(ids):
        raise UserError(f"Global.device={spec!r} lists a GPU twice")
    return "gpu", ids


def visible_gpu_count():
    """Number of GPUs this PaddlePaddle build can use (0 for the CPU package)."""
    from ..paddle_env import import_paddle

    paddle = import_paddle()
    if not paddle.device.is_compiled_with_cuda():
        return 0
    return paddle.device.cuda.device_count()


def validate_device(spec, gpu_count=None):
    """Return the normalised device string, or raise a UserError that says what to do instead."""
    kind, ids = parse_device(spec)
    if kind == "cpu":
        return "cpu"
    count = visible_gpu_count() if gpu_count is None else gpu_count
    if count == 0:
        raise UserError(f"Global.device={spec!r} asks for GPU(s), but no GPU is available to PaddlePaddle here "
                        "(CPU build or no CUDA device); use -o Global.device=cpu, or install paddlepaddle-gpu==2.6.2 "
                        "on a GPU machine (see README)")
    missing = [i for i in ids if i >= count]
    if missing:
        raise UserError(f"Global.device={spec!r} asks for GPU id(s) {missing}, but only {count} GPU(s) are visible "
                        f"(ids 0..{count - 1}); use e.g. -o Global.device=gpu:0")
    return "gpu:" + ",".join(map(str, ids))
