"""The training engine's process set-up: paddle and ppdet imported (through the paddledet adapter's
:func:`tutorial_lib.models.paddledet.import_ppdet`: import order, threads, full-graph export, 0-D tensor fixes),
seeding, device selection, and the process's place in data-parallel training (rank, world size, started by
``paddle.distributed.spawn`` or ``python -m paddle.distributed.launch``, which set ``PADDLE_TRAINER_ID`` /
``PADDLE_TRAINERS_NUM`` in every training process)."""
import os
import random

import numpy as np

from ..models.paddledet import import_ppdet


def setup():
    """Import paddle (+ ppdet, with fixes) and return the ``paddle`` module."""
    return import_ppdet()


def set_device(device):
    """``cpu`` / ``gpu:0`` / ``xpu:0,1`` ... (already validated by :func:`tutorial_lib.config.validate_device`):
    this process runs on the first id, or, in a data-parallel run (:mod:`.train`), on the card its launcher gave
    it."""
    from ..config.device import paddle_device

    paddle = setup()
    target = paddle_device(device)
    if world_size() > 1 and target != "cpu":
        target = f"{target.split(':')[0]}:{paddle.distributed.ParallelEnv().device_id}"
    paddle.set_device(target)
    return device


def device_ids(device):
    """``gpu:0,2`` -> ``[0, 2]``; ``gpu`` -> ``[0]``; ``cpu`` -> ``[]`` (the cards training spreads over)."""
    from ..config.device import parse_device

    return parse_device(device)[1]


def world_size():
    """Number of training processes (1 unless started by paddle.distributed's spawn or launch)."""
    return int(os.environ.get("PADDLE_TRAINERS_NUM", "1") or 1)


def rank():
    """This process's rank (rank 0 writes every output)."""
    return int(os.environ.get("PADDLE_TRAINER_ID", "0") or 0)


def init_distributed():
    """Join the process group once (no-op for a single process)."""
    paddle = setup()
    if world_size() > 1 and not paddle.distributed.is_initialized():
        paddle.distributed.init_parallel_env()


def mean_across_ranks(values):
    """``{name: float}`` averaged over the training processes (unchanged for one process): the loss of the whole
    global batch, of which each process saw a shard."""
    if world_size() < 2 or not values:
        return values
    paddle = setup()
    names = list(values)
    total = paddle.to_tensor([float(values[n]) for n in names], dtype="float64")
    paddle.distributed.all_reduce(total)
    return {n: float(v) / world_size() for n, v in zip(names, total.numpy().tolist())}


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
