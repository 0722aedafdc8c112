"""LabelMe and VOC -> COCO conversion: round trips, shape types, image resolution, label order, errors."""
import base64
import json
import shutil
import xml.etree.ElementTree as ET

import cv2
import numpy as np
import pytest

from conftest import tree_digest
from tutorial_lib.data.categories import NWPU_CLASSES
from tutorial_lib.data.check import check_coco_dataset
from tutorial_lib.data.coco import load_coco
from tutorial_lib.data.convert import (coco_to_labelme, coco_to_voc, convert_dataset, convert_labelme, convert_voc,
                                       mask_polygons)
from tutorial_lib.data.sample import generate_sample
from tutorial_lib.errors import UserError


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    out = tmp_path_factory.mktemp("tiny") / "ds"
    generate_sample(out, num_train=12, num_val=4, image_size=128, seed=2, progress=False)
    return out


def mask_ious(original_dir, converted_dir, split="train"):
    """IoU of each original annotation with the converted one of the same rank (both are in id order)."""
    a = load_coco(original_dir / "annotations" / f"instance_{split}.json")
    b = load_coco(converted_dir / "annotations" / f"instance_{split}.json")
    assert len(a.anns) == len(b.anns)
    ious = []
    for x, y in zip(sorted(a.anns), sorted(b.anns)):
        assert a.cats[a.anns[x]["category_id"]]["name"] == b.cats[b.anns[y]["category_id"]]["name"]
        m1, m2 = a.annToMask(a.anns[x]).astype(bool), b.annToMask(b.anns[y]).astype(bool)
        ious.append((m1 & m2).sum() / (m1 | m2).sum())
    return np.array(ious)


def file_names(dataset_dir, split):
    data = json.loads((dataset_dir / "annotations" / f"instance_{split}.json").read_text())
    return sorted(img["file_name"] for img in data["images"])


def test_labelme_round_trip_keeps_masks_split_and_label_order(tiny, tmp_path):
    labelme = coco_to_labelme(tiny, tmp_path / "labelme")
    before = tree_digest(labelme)
    summary = convert_labelme(labelme, tmp_path / "coco")
    assert tree_digest(labelme) == before  # the source is never modified
    assert summary["categories"] == list(NWPU_CLASSES)  # labels.txt order, not sorted
    assert summary["split_rule"] == "train_anno_list.txt / val_anno_list.txt"
    for split in ("train", "val"):
        assert file_names(tmp_path / "coco", split) == file_names(tiny, split)
        assert mask_ious(tiny, tmp_path / "coco", split).min() > 0.99
    assert check_coco_dataset(tmp_path / "coco", tmp_path / "out", progress=False)["check_pass"] is True


def test_labelme_without_lists_splits_80_20_with_the_seed_and_sorts_labels(tiny, tmp_path):
    labelme = coco_to_labelme(tiny, tmp_path / "labelme", write_labels=False)
    for name in ("train_anno_list.txt", "val_anno_list.txt"):
        (labelme / name).unlink()
    a = convert_labelme(labelme, tmp_path / "a", seed=0)
    b = convert_labelme(labelme, tmp_path / "b", seed=0)
    c = convert_labelme(labelme, tmp_path / "c", seed=1)
    assert (a["train_images"], a["val_images"]) == (13, 3)  # round(16 * 20 %) = 3 in val
    assert a["categories"] == sorted(a["categories"]) and a["split_rule"].startswith("seeded shuffle: 80% train")
    assert tree_digest(tmp_path / "a") == tree_digest(tmp_path / "b")
    assert file_names(tmp_path / "a", "val") != file_names(tmp_path / "c", "val")


def write_image(path, size=(80, 100)):
    image = np.full((size[1], size[0], 3), 90, np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), image)
    return path


def labelme_json(path, shapes, image_path, image_data=None, size=(80, 100)):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"version": "5.2.1", "shapes": shapes, "imagePath": image_path,
                                "imageData": image_data, "imageWidth": size[0], "imageHeight": size[1]}))


def shape(label, points, kind="polygon", group_id=None):
    return {"label": label, "points": points, "shape_type": kind, "group_id": group_id, "flags": {}}


def test_labelme_shape_types_groups_and_image_resolution(tmp_path):
    src = tmp_path / "src"
    write_image(src / "imgs" / "scene a.jpg")
    labelme_json(src / "labels" / "deep" / "a.json", [
        shape("tank", [[10, 20], [40, 50]], "rectangle"),
        shape("tank", [[60, 60], [60, 70]], "circle"),  # centre and a point on the circle: radius 10
        shape("ship", [[5, 80], [20, 80], [20, 95]], group_id=1),
        shape("ship", [[30, 80], [45, 80], [45, 95]], group_id=1),  # same label and group: one instance
        shape("road", [[0, 0], [79, 99]], "line"),  # no area: skipped and counted
    ], "..\\..\\imgs\\scene a.jpg")  # Windows separators, relative to the JSON
    ok, png = cv2.imencode(".png", np.zeros((30, 40, 3), np.uint8))
    labelme_json(src / "b.json", [shape("ship", [[1, 1], [30, 1], [30, 20]])], "missing/b.png",
                 base64.b64encode(png.tobytes()).decode(), size=(40, 30))
    summary = convert_labelme(src, tmp_path / "coco", train_percent=50)
    assert summary["categories"] == ["ship", "tank"] and summary["skipped_shapes"] == {"line": 1}
    coco = {}
    for split in ("train", "val"):
        data = json.loads((tmp_path / "coco" / "annotations" / f"instance_{split}.json").read_text())
        for img in data["images"]:
            coco[img["file_name"]] = (img, [a for a in data["annotations"] if a["image_id"] == img["id"]])
    assert sorted(coco) == ["b.png", "scene a.jpg"]
    img_a, anns_a = coco["scene a.jpg"]
    assert (img_a["width"], img_a["height"]) == (80, 100)
    rectangle, circle, ship = anns_a
    assert rectangle["bbox"] == [10, 20, 30, 30] and rectangle["area"] == 900
    assert circle["area"] == pytest.approx(np.pi * 100, rel=0.06)
    assert len(ship["segmentation"]) == 2 and ship["category_id"] == 1
    assert (tmp_path / "coco" / "images" / "b.png").read_bytes() == png.tobytes()  # from imageData
    assert check_coco_dataset(tmp_path / "coco", tmp_path / "out", progress=False)["errors"] == []


def test_labelme_problems_are_all_named(tmp_path):
    src = tmp_path / "src"
    write_image(src / "a.jpg")
    labelme_json(src / "a.json", [shape("tank", [[1, 1], [9, 1], [9, 9]])], "a.jpg")
    labelme_json(src / "b.json", [shape("tank", [[1, 1], [9, 1], [9, 9]])], "nowhere.jpg")
    (src / "c.json").write_text('{"shapes": [')
    with pytest.raises(UserError) as info:
        convert_labelme(src, tmp_path / "coco")
    message = str(info.value)
    assert "b.json: image nowhere.jpg not found" in message and "no imageData" in message
    assert "c.json: " in message and not (tmp_path / "coco").exists()
    (src / "b.json").unlink()
    (src / "c.json").unlink()
    with pytest.raises(UserError, match="label 'tank' is not in the label list"):
        convert_labelme(src, tmp_path / "coco", label_list=["ship"])


def test_voc_round_trip_with_image_sets(tiny, tmp_path):
    voc = coco_to_voc(tiny, tmp_path / "voc")
    before = tree_digest(voc)
    summary = convert_voc(voc, tmp_path / "coco")
    assert tree_digest(voc) == before
    assert summary["split_rule"] == "ImageSets/Segmentation/train.txt / val.txt"
    assert summary["categories"] == sorted(_per_class(tiny))  # no labels.txt: sorted names of the labels found
    for split in ("train", "val"):
        assert file_names(tmp_path / "coco", split) == file_names(tiny, split)
        ious = mask_ious(tiny, tmp_path / "coco", split)
        assert ious.min() > 0.9 and ious.mean() > 0.98
    assert check_coco_dataset(tmp_path / "coco", tmp_path / "out", progress=False)["check_pass"] is True


def _per_class(dataset_dir):
    counts = {}
    for split in ("train", "val"):
        data = json.loads((dataset_dir / "annotations" / f"instance_{split}.json").read_text())
        names = {c["id"]: c["name"] for c in data["categories"]}
        for ann in data["annotations"]:
            counts[names[ann["category_id"]]] = counts.get(names[ann["category_id"]], 0) + 1
    return counts


def test_voc_class_png_fallback_and_seeded_split(tiny, tmp_path):
    voc = coco_to_voc(tiny, tmp_path / "voc", write_labels=True)
    shutil.rmtree(voc / "ImageSets")
    for xml in (voc / "Annotations").glob("*.xml"):  # drop the object names: classes must come from the PNGs
        tree = ET.parse(xml)
        for obj in tree.getroot().findall("object"):
            tree.getroot().remove(obj)
        tree.write(xml)
    summary = convert_voc(voc, tmp_path / "coco", seed=4)
    assert summary["categories"] == list(NWPU_CLASSES)
    assert (summary["train_images"], summary["val_images"]) == (13, 3)
    assert _per_class(tmp_path / "coco") == {k: v for k, v in _per_class(tiny).items() if v}


def test_mask_polygons_cover_thin_parts():
    mask = np.zeros((12, 12), np.uint8)
    mask[2:6, 3:9] = 1
    mask[9, 1:11] = 1  # one pixel high
    coco = load_coco({"images": [{"id": 1, "width": 12, "height": 12, "file_name": "x"}], "categories": [],
                      "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "segmentation": mask_polygons(mask)}]})
    assert (coco.annToMask(coco.anns[1]) == mask).all()


def test_destination_rules(tiny, tmp_path):
    labelme = coco_to_labelme(tiny, tmp_path / "labelme")
    with pytest.raises(UserError, match="holds the source"):
        convert_labelme(labelme, tmp_path)
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "keep.txt").write_text("x")
    with pytest.raises(UserError, match="not empty"):
        convert_labelme(labelme, tmp_path / "busy")
    with pytest.raises(UserError, match="LabelMe or VOC"):
        convert_dataset("YOLO", labelme, tmp_path / "out")
    inside = convert_dataset("LabelMe", labelme, labelme / "converted")  # inside the source: skipped on rescans
    again = convert_dataset("LabelMe", labelme, labelme / "converted")
    assert inside["train_annotations"] == again["train_annotations"] > 0
