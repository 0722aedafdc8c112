"""Datasets for training and evaluation, and deterministic, resumable batches.

The dataset is the tutorial's COCO layout (``images/``, ``annotations/instance_train.json``,
``annotations/instance_val.json``), read by paddledet's ``COCODataSet`` (class ids 0..N-1 in category-id order).

Batches are made in the main process: the order of epoch *e* is a permutation seeded by ``(seed, e)``,
and every sample's random augmentation is seeded by ``(seed, e, index)``. A batch is therefore a pure
function of (seed, epoch, step): training resumed at any step sees exactly the batches the uninterrupted
run saw, and data loading never races the training thread for the global random generators.
"""
import contextlib
import copy
import io
import json
import random
from pathlib import Path

import numpy as np

from ..errors import UserError
from .seeding import mixed_seed

SPLITS = {"train": "annotations/instance_train.json", "val": "annotations/instance_val.json"}


def annotation_path(dataset_dir, split):
    if dataset_dir is None:
        raise UserError("Global.dataset_dir is not set; pass -o Global.dataset_dir=DIR "
                        "(make one with: python -m tutorial_lib sample --output DIR)")
    root = Path(dataset_dir)
    if not root.is_dir():
        raise UserError(f"Global.dataset_dir={dataset_dir} does not exist")
    path = root / SPLITS[split]
    if not path.is_file():
        raise UserError(f"{path} is missing; the dataset must have the COCO layout images/ + {SPLITS[split]}")
    return path


def read_categories(dataset_dir, split="train"):
    """The dataset's categories sorted by id: ``[{"id": 1, "name": "airplane"}, ...]``."""
    path = annotation_path(dataset_dir, split)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise UserError(f"{path} is not valid JSON: {exc}") from None
    cats = sorted(data.get("categories") or [], key=lambda c: c["id"])
    if not cats:
        raise UserError(f"{path} lists no categories")
    return [{"id": int(c["id"]), "name": str(c["name"])} for c in cats]


def check_num_classes(num_classes, categories, source="Train.num_classes"):
    """``num_classes`` (None = take the dataset's) must equal the dataset's number of categories."""
    if num_classes is None:
        return len(categories)
    if int(num_classes) != len(categories):
        names = ", ".join(c["name"] for c in categories)
        raise UserError(f"{source}={num_classes} but the dataset has {len(categories)} categories ({names}); "
                        f"set -o {source}={len(categories)}")
    return int(num_classes)


class Split:
    """One split of the dataset, parsed once: ``roidbs`` (paddledet records) and its COCO ground truth."""

    def __init__(self, dataset_dir, split, allow_empty):
        from ppdet.data.source.coco import COCODataSet

        path = annotation_path(dataset_dir, split)
        fields = ["image", "gt_bbox", "gt_class", "gt_poly", "is_crowd"]
        dataset = COCODataSet(str(dataset_dir), "images", SPLITS[split], data_fields=fields,
                              allow_empty=allow_empty)
        with contextlib.redirect_stdout(io.StringIO()):
            try:
                dataset.parse_dataset()
            except (AssertionError, ValueError, KeyError) as exc:
                raise UserError(f"cannot read {path}: {exc}") from None
        self.path = path
        self.roidbs = dataset.roidbs
        self.catid2clsid = dict(dataset.catid2clsid)
        self.clsid2catid = {v: k for k, v in self.catid2clsid.items()}
        missing = [r["im_file"] for r in self.roidbs[:50] if not Path(r["im_file"]).is_file()]
        if missing:
            raise UserError(f"image {missing[0]} listed in {path} does not exist")
        if not self.roidbs:
            raise UserError(f"{path} has no usable images (with annotations)" if not allow_empty else
                            f"{path} has no images")

    def __len__(self):
        return len(self.roidbs)


def steps_per_epoch(num_samples, batch_size):
    """Full batches per epoch (the last partial batch is dropped), at least one."""
    return max(1, num_samples // batch_size)


def epoch_batches(num_samples, batch_size, seed, epoch, shuffle=True):
    """The sample indices of each batch of ``epoch``."""
    order = np.arange(num_samples)
    if shuffle:
        order = np.random.default_rng(mixed_seed(seed, epoch, 7919)).permutation(num_samples)
    if num_samples < batch_size:
        return [order.tolist()]
    steps = num_samples // batch_size
    return [order[i * batch_size:(i + 1) * batch_size].tolist() for i in range(steps)]


def load_sample(roidbs, index, transforms, seed=None, epoch=0):
    """Apply the sample transforms to record ``index``; augmentations seeded by ``(seed, epoch, index)``."""
    if seed is not None:
        state = mixed_seed(seed, epoch, index)
        random.seed(state)
        np.random.seed(state)
    return transforms(copy.deepcopy(roidbs[index]))


def train_batches(split, transforms, batch_transforms, batch_size, seed, epoch, start_step=0, rank=0, world_size=1):
    """Yield ``(step, batch)`` for ``epoch`` from ``start_step`` on (earlier batches are not loaded).

    Data parallel: the epoch is cut into global batches of ``batch_size * world_size`` samples (the same cut for
    every process) and process ``rank`` takes the ``rank``-th slice of ``batch_size`` of each, so that N processes
    with batch b see exactly the samples one process with batch N*b sees."""
    batches = epoch_batches(len(split), batch_size * world_size, seed, epoch)
    for step in range(start_step, len(batches)):
        shard = batches[step][rank * batch_size:(rank + 1) * batch_size] if world_size > 1 else batches[step]
        samples = [load_sample(split.roidbs, i, transforms, seed, epoch) for i in shard]
        yield step, batch_transforms(samples)


def eval_batches(split, transforms, batch_transforms, batch_size=1):
    """Yield ``(records, batch)`` over the whole split in order (no augmentation)."""
    for start in range(0, len(split), batch_size):
        indices = list(range(start, min(start + batch_size, len(split))))
        samples = [load_sample(split.roidbs, i, transforms) for i in indices]
        yield [split.roidbs[i] for i in indices], batch_transforms(samples)
