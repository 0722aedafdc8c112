import json

import cv2
import numpy as np
import pytest
from pycocotools import mask as mask_utils

from conftest import REPO, tree_digest
from tutorial_lib.data.categories import NWPU_CLASSES
from tutorial_lib.data.coco import load_coco
from tutorial_lib.data.sample import generate_sample, render_demo_image, summarize
from tutorial_lib.errors import UserError

# Per-class instance counts of the default CI sample (preset "ci", seed 0): a regression record.
EXPECTED_TRAIN_COUNTS = {
    "airplane": 70, "storage_tank": 50, "vehicle": 53, "tennis_court": 51, "baseball_diamond": 30,
    "ship": 23, "harbor": 4, "basketball_court": 15, "ground_track_field": 8, "bridge": 3,
}


def test_same_seed_gives_identical_files_and_other_seed_differs(tmp_path):
    kwargs = dict(num_train=6, num_val=3, image_size=128, progress=False)
    generate_sample(tmp_path / "a", seed=5, **kwargs)
    generate_sample(tmp_path / "b", seed=5, **kwargs)
    generate_sample(tmp_path / "c", seed=6, **kwargs)
    assert tree_digest(tmp_path / "a") == tree_digest(tmp_path / "b")
    assert tree_digest(tmp_path / "a") != tree_digest(tmp_path / "c")


def test_image_i_does_not_depend_on_dataset_size(tmp_path):
    generate_sample(tmp_path / "small", num_train=3, num_val=1, image_size=128, seed=1, progress=False)
    generate_sample(tmp_path / "big", num_train=6, num_val=2, image_size=128, seed=1, progress=False)
    for i in range(3):
        assert (tmp_path / "small/images" / f"{i:05d}.jpg").read_bytes() == \
            (tmp_path / "big/images" / f"{i:05d}.jpg").read_bytes()


def test_layout_and_categories(sample_dir):
    for split, n in (("train", 64), ("val", 16)):
        data = json.loads((sample_dir / "annotations" / f"instance_{split}.json").read_text())
        assert [c["name"] for c in data["categories"]] == list(NWPU_CLASSES)
        assert [c["id"] for c in data["categories"]] == list(range(1, 11))
        assert len(data["images"]) == n
        for image in data["images"]:
            decoded = cv2.imread(str(sample_dir / "images" / image["file_name"]))
            assert decoded.shape == (image["height"], image["width"], 3)


@pytest.mark.parametrize("split", ["train", "val"])
def test_masks_lie_inside_images_and_match_bbox_and_area(sample_dir, split):
    coco = load_coco(sample_dir / "annotations" / f"instance_{split}.json")
    ids = set()
    for ann in coco.dataset["annotations"]:
        assert ann["id"] not in ids
        ids.add(ann["id"])
        image = coco.imgs[ann["image_id"]]
        assert ann["iscrowd"] == 0 and all(len(poly) >= 6 for poly in ann["segmentation"])
        for poly in ann["segmentation"]:
            xs, ys = np.array(poly[0::2]), np.array(poly[1::2])
            assert xs.min() >= 0 and ys.min() >= 0 and xs.max() <= image["width"] and ys.max() <= image["height"]
        mask = coco.annToMask(ann)
        assert mask.shape == (image["height"], image["width"])
        assert mask.sum() == pytest.approx(ann["area"], abs=0.5) and mask.sum() >= 4
        ys, xs = np.nonzero(mask)
        x, y, w, h = ann["bbox"]
        assert (xs.min(), ys.min()) == (round(x), round(y))
        assert (xs.max() + 1, ys.max() + 1) == (round(x + w), round(y + h))
        rle_box = mask_utils.toBbox(coco.annToRLE(ann))
        assert np.allclose(rle_box, ann["bbox"], atol=0.01)


def test_class_histogram_of_the_default_sample(sample_dir):
    summary = summarize(sample_dir)
    train = summary["splits"]["train"]
    assert train["per_class"] == EXPECTED_TRAIN_COUNTS
    assert all(count > 0 for count in train["per_class"].values())
    frequent = sum(train["per_class"][c] for c in ("airplane", "storage_tank", "vehicle", "tennis_court"))
    assert frequent > 0.6 * train["instances"]  # imbalance like NWPU VHR-10
    assert train["background_images"] >= 1 and summary["splits"]["val"]["instances"] > 0


def test_existing_folder_is_reused_or_protected(tmp_path):
    out = tmp_path / "ds"
    generate_sample(out, num_train=2, num_val=1, image_size=96, progress=False)
    digest = tree_digest(out)
    assert generate_sample(out, num_train=2, num_val=1, image_size=96, progress=False)["reused"]
    with pytest.raises(UserError, match="other parameters"):
        generate_sample(out, num_train=3, num_val=1, image_size=96, progress=False)
    assert tree_digest(out) == digest
    generate_sample(out, num_train=3, num_val=1, image_size=96, progress=False, overwrite=True)
    assert len(list((out / "images").iterdir())) == 4
    assert [p.name for p in tmp_path.iterdir()] == ["ds"]  # no temporary folders left behind


@pytest.mark.parametrize("kwargs", [dict(preset="huge"), dict(num_train=0), dict(image_size=16)])
def test_bad_parameters(tmp_path, kwargs):
    with pytest.raises(UserError):
        generate_sample(tmp_path / "x", progress=False, **kwargs)


def test_committed_demo_image_is_the_generated_scene(tmp_path):
    committed = cv2.imread(str(REPO / "data" / "remotesensing_demo.png"))
    image, annotations = render_demo_image(tmp_path / "demo.png")
    assert committed.shape == (512, 512, 3)
    assert np.abs(committed.astype(int) - image[..., ::-1].astype(int)).mean() < 1.0
    assert len({name for name, _ in annotations}) >= 4
