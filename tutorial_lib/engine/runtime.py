"""paddledet for the engine: paddle imported through :func:`tutorial_lib.paddle_env.import_paddle` (import
order, threads, full-graph export), then ppdet with its chatter silenced and the 0-D tensor fixes of
:mod:`.compat` applied; seeding and device selection.
"""
import contextlib
import io
import logging
import random

import numpy as np

from ..paddle_env import import_paddle

_READY = False


def setup():
    """Prepare the environment, import paddle (+ ppdet, with fixes) and return the ``paddle`` module."""
    global _READY
    if not _READY:
        import_paddle()
        with contextlib.redirect_stdout(io.StringIO()):  # ppdet prints "Warning: Unable to use MOT ..." lines
            import ppdet  # noqa: F401  (registers modules)
            import ppdet.modeling  # noqa: F401

        for name in ("ppdet", "ppdet.utils.checkpoint", "ppdet.data.source.coco", "ppdet.utils.logger"):
            logging.getLogger(name).setLevel(logging.ERROR)
        from . import compat

        compat.apply()
        _READY = True
    import paddle

    return paddle


def set_device(device):
    """``cpu`` / ``gpu:0`` (already validated by :func:`tutorial_lib.config.validate_device`)."""
    paddle = setup()
    kind = device.split(":")[0]
    if kind == "gpu":
        first = device.split(":")[1].split(",")[0] if ":" in device else "0"
        paddle.set_device(f"gpu:{first}")
    else:
        paddle.set_device("cpu")
    return device


def seed_all(seed):
    """Seed paddle, numpy and random (global generators)."""
    paddle = setup()
    paddle.seed(int(seed))
    np.random.seed(int(seed) % (2 ** 32))
    random.seed(int(seed))


def mixed_seed(*parts):
    """A 31-bit seed that depends on every part (stable across processes, unlike ``hash``)."""
    value = 0x9E3779B1
    for part in parts:
        value = (value * 1000003) ^ (int(part) & 0xFFFFFFFF)
        value &= 0xFFFFFFFFFFFF
    return value % (2 ** 31 - 1)
