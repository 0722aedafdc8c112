"""split_dataset / undo_split: seeded, class-aware, id-preserving, reversible."""
import json
import shutil
from collections import Counter

import pytest

from conftest import tiny_sample, tree_digest
from tutorial_lib.data.split import list_backups, split_dataset, undo_split
from tutorial_lib.errors import UserError


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return tiny_sample(tmp_path_factory, num_train=16, seed=5)


@pytest.fixture
def ds(tiny, tmp_path):
    return shutil.copytree(tiny, tmp_path / "ds")


def load(ds, split):
    return json.loads((ds / "annotations" / f"instance_{split}.json").read_text())


def annotation_bytes(ds):
    return [(ds / "annotations" / f"instance_{s}.json").read_bytes() for s in ("train", "val")]


def test_split_keeps_every_id_and_puts_each_class_in_val(ds):
    before = {s: load(ds, s) for s in ("train", "val")}
    summary = split_dataset(ds, 75, 25, seed=0)
    after = {s: load(ds, s) for s in ("train", "val")}
    assert (summary["train_images"], summary["val_images"]) == (15, 5)
    for key in ("images", "annotations"):
        old = sorted((x for s in before.values() for x in s[key]), key=lambda x: x["id"])
        new = sorted((x for s in after.values() for x in s[key]), key=lambda x: x["id"])
        assert new == old  # same entries, ids untouched
    for split in ("train", "val"):
        ids = {img["id"] for img in after[split]["images"]}
        assert all(a["image_id"] in ids for a in after[split]["annotations"])
        assert after[split]["categories"] == before["train"]["categories"]
    images_per_class = Counter(c for s in before.values() for c in
                               {(a["image_id"], a["category_id"]) for a in s["annotations"]})
    classes = Counter(c for _, c in images_per_class)
    in_val = {a["category_id"] for a in after["val"]["annotations"]}
    in_train = {a["category_id"] for a in after["train"]["annotations"]}
    assert {c for c, n in classes.items() if n >= 2} <= in_val  # every class with 2+ images reaches val
    assert set(classes) == in_train  # and train keeps every class


def test_same_seed_gives_byte_identical_files_other_seed_differs(ds, tmp_path):
    split_dataset(ds, 80, 20, seed=3)
    first = annotation_bytes(ds)
    split_dataset(ds, 80, 20, seed=3)
    assert annotation_bytes(ds) == first
    other = shutil.copytree(ds, tmp_path / "other")
    split_dataset(other, 80, 20, seed=4)
    assert load(other, "val")["images"] != load(ds, "val")["images"]


def test_every_backup_survives_and_undo_restores_each_state(ds):
    original = tree_digest(ds)
    original_files = annotation_bytes(ds)
    split_dataset(ds, 80, 20, seed=1)
    first_split = annotation_bytes(ds)
    split_dataset(ds, 60, 40, seed=2)
    assert [p.name for p in list_backups(ds)] == ["001", "002"]
    assert [(list_backups(ds)[0] / f"instance_{s}.json").read_bytes() for s in ("train", "val")] == original_files
    undo_split(ds)
    assert annotation_bytes(ds) == first_split
    undo_split(ds)
    assert tree_digest(ds) == original and not list_backups(ds)
    with pytest.raises(UserError, match="nothing to undo"):
        undo_split(ds)


def test_refuses_what_would_lose_data(ds):
    data = load(ds, "val")
    data["categories"][0]["name"] = "plane"
    (ds / "annotations" / "instance_val.json").write_text(json.dumps(data))
    before = tree_digest(ds)
    with pytest.raises(UserError, match="different categories"):
        split_dataset(ds, 80, 20)
    assert tree_digest(ds) == before  # nothing written, no backup made
    data["categories"][0]["name"] = "airplane"
    data["images"][0]["id"] = load(ds, "train")["images"][0]["id"]
    (ds / "annotations" / "instance_val.json").write_text(json.dumps(data))
    with pytest.raises(UserError, match=r"image id\(s\) \[1\] occur more than once"):
        split_dataset(ds, 80, 20)
    (ds / "annotations" / "instance_val.json").write_text("{broken")
    with pytest.raises(UserError, match="not a readable COCO file"):
        split_dataset(ds, 80, 20)
    assert not list_backups(ds)


@pytest.mark.parametrize("train, val", [(80, 30), (0, 100), (100, 0)])
def test_bad_percentages(ds, train, val):
    with pytest.raises(UserError, match="sum to 100"):
        split_dataset(ds, train, val)
