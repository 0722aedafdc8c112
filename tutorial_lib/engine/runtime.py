"""The training engine's process set-up: paddle and ppdet imported (through the paddledet adapter's
:func:`tutorial_lib.models.paddledet.import_ppdet`: import order, threads, full-graph export, 0-D tensor fixes),
seeding and device selection."""
import random

import numpy as np

from ..models.paddledet import import_ppdet


def setup():
    """Import paddle (+ ppdet, with fixes) and return the ``paddle`` module."""
    return import_ppdet()


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
