"""Step 4: re-split a COCO dataset into train/val (``CheckDataset.split``), reversibly.

:func:`split_dataset` merges ``instance_train.json`` and ``instance_val.json``, shuffles the images with
the seed and writes new files. Unlike PaddleX (which keeps one ``.bak`` that the next split overwrites),
every previous pair of files is kept under ``annotations/backup/001/``, ``002/``, ... and
:func:`undo_split` restores the newest one. Image and annotation ids are kept; the same input, percentages
and seed give byte-identical files, so splitting twice with one seed changes nothing.

A chip dataset of GeoTIFF scenes (:mod:`.geochips`) is refused: it was split by area when chipped, and a random
split would put neighbouring, overlapping chips in train and val.

Val gets ``round(n * val_percent / 100)`` images (at least one, and at least one left for train). Before
the shuffled order fills val, each class (rarest first) gets one val image that has it, as long as
train keeps an image of every class it had.
"""
import json
import os
import shutil
from collections import Counter
from pathlib import Path

import numpy as np

from ..errors import UserError
from .geochips import is_chip_dataset

SPLITS = ("train", "val")


def _annotation_path(dataset_dir, split):
    return Path(dataset_dir) / "annotations" / f"instance_{split}.json"


def _read(dataset_dir):
    data = {}
    for split in SPLITS:
        path = _annotation_path(dataset_dir, split)
        try:
            data[split] = json.loads(path.read_text(encoding="utf-8"))
            for key in ("images", "annotations", "categories"):
                if not isinstance(data[split].get(key), list):
                    raise ValueError(f"'{key}' is not a list")
                if not all(isinstance(item, dict) and "id" in item for item in data[split][key]):
                    raise ValueError(f"an entry of '{key}' is not an object with an id")
        except (OSError, ValueError, AttributeError) as exc:
            raise UserError(f"cannot split {dataset_dir}: {path.name} is not a readable COCO file ({exc}); "
                            "run check_dataset without split first and fix what it reports") from None
    return data


def _merge(data, dataset_dir):
    """All images and annotations of both files, by id; refuses anything that would lose data."""
    train, val = data["train"], data["val"]
    if train["categories"] != val["categories"]:
        raise UserError(f"cannot split {dataset_dir}: train and val list different categories; make both "
                        "'categories' lists identical first (check_dataset names the differences)")
    images = train["images"] + val["images"]
    annotations = train["annotations"] + val["annotations"]
    for what, items in (("image", images), ("annotation", annotations)):
        duplicates = sorted(i for i, n in Counter(item["id"] for item in items).items() if n > 1)
        if duplicates:
            raise UserError(f"cannot split {dataset_dir}: {what} id(s) {duplicates[:10]} occur more than once across "
                            "train and val; ids must be unique to merge the two files")
    image_ids = {img["id"] for img in images}
    orphans = sorted({a["id"] for a in annotations if a["image_id"] not in image_ids})
    if orphans:
        raise UserError(f"cannot split {dataset_dir}: annotation id(s) {orphans[:10]} refer to no image; "
                        "fix or delete them first")
    return sorted(images, key=lambda i: i["id"]), sorted(annotations, key=lambda a: a["id"])


def _choose_val(images, annotations, n_val, seed):
    """Image ids for val: one per class where train keeps the class, then the seeded order."""
    order = [images[i]["id"] for i in np.random.default_rng(seed).permutation(len(images))]
    classes = {img["id"]: set() for img in images}
    for ann in annotations:
        classes[ann["image_id"]].add(ann["category_id"])
    images_with = Counter(c for cs in classes.values() for c in cs)
    val, in_val = [], Counter()

    def can_move(image_id):  # train keeps at least one image of each class of this image
        return image_id not in val and all(images_with[c] - in_val[c] > 1 for c in classes[image_id])

    def move(image_id):
        val.append(image_id)
        in_val.update(classes[image_id])

    for cat in sorted(images_with, key=lambda c: (images_with[c], c)):
        if len(val) < n_val and not in_val[cat]:
            pick = next((i for i in order if cat in classes[i] and can_move(i)), None)
            if pick is not None:
                move(pick)
    for image_id in order:
        if len(val) < n_val and can_move(image_id):
            move(image_id)
    for image_id in order:  # percentages win over class coverage when they cannot both hold
        if len(val) < n_val and image_id not in val:
            move(image_id)
    return set(val)


def list_backups(dataset_dir):
    """Backup folders of earlier splits, oldest first."""
    root = Path(dataset_dir) / "annotations" / "backup"
    return sorted(p for p in root.iterdir() if p.is_dir() and p.name.isdigit()) if root.is_dir() else []


def _backup(dataset_dir):
    backups = list_backups(dataset_dir)
    folder = Path(dataset_dir) / "annotations" / "backup" / f"{int(backups[-1].name) + 1 if backups else 1:03d}"
    folder.mkdir(parents=True)
    for split in SPLITS:
        shutil.copy2(_annotation_path(dataset_dir, split), folder / f"instance_{split}.json")
    return folder


def _write_atomic(path, data):
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def split_dataset(dataset_dir, train_percent, val_percent, seed=0):
    """Re-split ``dataset_dir`` into ``train_percent``/``val_percent`` of its images; return a summary."""
    if not (0 < train_percent < 100 and 0 < val_percent < 100 and train_percent + val_percent == 100):
        raise UserError(f"split percentages must be in (0, 100) and sum to 100, got train_percent={train_percent}, "
                        f"val_percent={val_percent}")
    data = _read(dataset_dir)
    if any(is_chip_dataset(d) for d in data.values()):
        raise UserError(f"cannot split {Path(dataset_dir).name} at random: its images are chips of GeoTIFF scenes, "
                        "and neighbours would land in train and val; re-chip with CheckDataset.convert.val_fraction "
                        "instead")
    images, annotations = _merge(data, dataset_dir)
    if len(images) < 2:
        raise UserError(f"cannot split {dataset_dir}: it has {len(images)} image(s); a split needs at least 2")
    n_val = min(max(round(len(images) * val_percent / 100), 1), len(images) - 1)
    val_ids = _choose_val(images, annotations, n_val, seed)
    backup = _backup(dataset_dir)
    rule = {"train_percent": train_percent, "val_percent": val_percent, "seed": seed}
    summary = {"dataset_dir": str(dataset_dir), **rule, "backup": str(backup)}
    for split in SPLITS:
        keep = {img["id"] for img in images if (img["id"] in val_ids) == (split == "val")}
        base = data["train"]
        info = dict(base["info"]) if isinstance(base.get("info"), dict) else {}
        info.update(split=split, split_rule=rule)
        out = {**base, "info": info, "images": [img for img in images if img["id"] in keep],
               "annotations": [a for a in annotations if a["image_id"] in keep], "categories": base["categories"]}
        _write_atomic(_annotation_path(dataset_dir, split), out)
        summary[f"{split}_images"] = len(out["images"])
        summary[f"{split}_annotations"] = len(out["annotations"])
    return summary


def undo_split(dataset_dir):
    """Restore the annotation files saved by the newest split and remove that backup; return its path."""
    backups = list_backups(dataset_dir)
    if not backups:
        raise UserError(f"nothing to undo: {dataset_dir}/annotations/backup/ holds no earlier split")
    newest = backups[-1]
    for split in SPLITS:
        os.replace(newest / f"instance_{split}.json", _annotation_path(dataset_dir, split))
    newest.rmdir()
    return newest
