"""Seeding: the global generators (paddle, numpy, random) and stable seeds mixed from several numbers, which make a
run resumed from any iteration end with the same weights as an uninterrupted one (:mod:`.trainer`, :mod:`.data`)."""
import random

import numpy as np

from ..models.ppdet_ops import import_ppdet


def seed_all(seed):
    """Seed paddle, numpy and random (global generators)."""
    paddle = import_ppdet()
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
