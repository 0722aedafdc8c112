"""Data in the layouts LabelMe itself writes: its JSON files with labels.txt (``__ignore__``/``_background_``),
its VOC export (``labelme2voc``: JPEGImages/, SegmentationClass/ + SegmentationObject/ PNGs, class_names.txt),
VOC without any class list, and a train split without annotations."""
import json

import cv2
import numpy as np
import pytest
from PIL import Image

import tutorial_lib as tl
from tutorial_lib.data.check import check_coco_dataset
from tutorial_lib.data.coco import load_coco
from tutorial_lib.data.convert import VOC_CLASSES, convert_voc, voc_palette
from tutorial_lib.data.sample import generate_sample

SIZE = (120, 90)  # width, height


def run_check(dataset_dir, output, *extra):
    return tl.run("Mask-RT-DETR-S", ["Global.mode=check_dataset", f"Global.dataset_dir={dataset_dir}",
                                     f"Global.output={output}", *extra])


def scene(rng):
    """A textured image and a few non-overlapping square-ish polygons: [(label, polygon points)]."""
    image = rng.integers(60, 200, (SIZE[1], SIZE[0], 3), dtype=np.uint8)
    objects = []
    for k, (x, y) in enumerate([(8, 8), (60, 10), (15, 50), (70, 52)]):
        w, h = (int(v) for v in rng.integers(18, 28, 2))
        label = ("ship", "tank", "ship", "__ignore__")[k]
        objects.append((label, [[x, y], [x + w, y], [x + w - 3, y + h], [x + 2, y + h]]))
    return image, objects


def mask_of(points):
    mask = np.zeros((SIZE[1], SIZE[0]), np.uint8)
    cv2.fillPoly(mask, [np.round(np.array(points)).astype(np.int32)], 1)
    return mask.astype(bool)


# ----------------------------------------------------------------------------- LabelMe's own files
def write_labelme_folder(root, num_images=12, seed=0):
    """One JSON per image next to its JPEG, the way LabelMe saves: imagePath is the file name, imageData null."""
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True)
    (root / "labels.txt").write_text("__ignore__\n_background_\nship\ntank\n")
    drawn = {}
    for i in range(num_images):
        image, objects = scene(rng)
        name = f"img_{i:03d}"
        Image.fromarray(image).save(root / f"{name}.jpg", quality=95)
        shapes = [{"label": label, "points": points, "group_id": None, "description": "", "shape_type": "polygon",
                   "flags": {}, "mask": None} for label, points in objects]
        if i == 0:  # a background rectangle, which LabelMe users draw for "everything else"
            shapes.append({"label": "_background_", "points": [[0, 0], [SIZE[0] - 1, SIZE[1] - 1]],
                           "group_id": None, "description": "", "shape_type": "rectangle", "flags": {},
                           "mask": None})
        (root / f"{name}.json").write_text(json.dumps({
            "version": "5.4.1", "flags": {}, "shapes": shapes, "imagePath": f"{name}.jpg", "imageData": None,
            "imageHeight": SIZE[1], "imageWidth": SIZE[0]}, indent=2))
        drawn[f"{name}.jpg"] = [(label, points) for label, points in objects if label != "__ignore__"]
    return drawn


def converted_annotations(dataset_dir):
    """{file_name: [(class name, mask)]} over both splits of a COCO dataset."""
    found = {}
    for split in ("train", "val"):
        coco = load_coco(dataset_dir / "annotations" / f"instance_{split}.json")
        for image_id, info in coco.imgs.items():
            found[info["file_name"]] = [(coco.cats[a["category_id"]]["name"], coco.annToMask(a).astype(bool))
                                        for a in coco.loadAnns(coco.getAnnIds(imgIds=[image_id]))]
    return found


def iou(a, b):
    return (a & b).sum() / (a | b).sum()


def test_labelme_ignore_and_background_are_not_classes(tmp_path, capsys):
    drawn = write_labelme_folder(tmp_path / "labelme")
    result = run_check(tmp_path / "labelme", tmp_path / "out", "CheckDataset.convert.enable=True",
                       "CheckDataset.convert.src_dataset_type=LabelMe")
    convert = result["convert"]
    assert convert["categories"] == ["ship", "tank"]  # labels.txt order, without __ignore__ / _background_
    assert convert["skipped_shapes"] == {"__ignore__": 12, "_background_": 1}
    assert result["check_pass"] is True, result["errors"]
    assert result["attributes"]["class_names"] == ["ship", "tank"]
    assert result["attributes"]["train_annotations"] + result["attributes"]["val_annotations"] == 36
    found = converted_annotations(tmp_path / "out" / "converted_dataset")
    assert sorted(found) == sorted(drawn)
    for name, objects in drawn.items():
        assert [label for label, _ in found[name]] == [label for label, _ in objects]
        for (_, mask), (_, points) in zip(found[name], objects):
            assert iou(mask, mask_of(points)) > 0.85
    out = capsys.readouterr().out
    assert "13 shape(s) skipped (__ignore__ x12, _background_ x1)" in out
    assert "Check dataset passed !" in out


# ----------------------------------------------------------------------------- LabelMe's VOC export
def save_indexed(array, path):
    image = Image.fromarray(array.astype(np.uint8), mode="P")
    image.putpalette(voc_palette())
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path)


def write_labelme_voc_export(root, png_folders=False, num_images=10, seed=1):
    """What ``labelme2voc.py --labels labels.txt`` writes: class PNGs (0 background, 255 ignore, k = k-th line of
    class_names.txt) and object PNGs (1..N, ignored regions 0); newer versions put the PNGs in ...PNG/ folders and
    .npy arrays in SegmentationClass/ and SegmentationObject/."""
    rng = np.random.default_rng(seed)
    names = ["_background_", "ship", "tank"]
    (root / "JPEGImages").mkdir(parents=True)
    (root / "class_names.txt").write_text("\n".join(names))  # labelme2voc writes no final newline
    class_dir, object_dir = (("SegmentationClassPNG", "SegmentationObjectPNG") if png_folders else
                             ("SegmentationClass", "SegmentationObject"))
    drawn = {}
    for i in range(num_images):
        image, objects = scene(rng)
        name = f"2011_{i:06d}"
        Image.fromarray(image).save(root / "JPEGImages" / f"{name}.jpg", quality=95)
        classes = np.zeros((SIZE[1], SIZE[0]), np.int32)
        instances = np.zeros_like(classes)
        kept, k = [], 0
        for label, points in objects:
            mask = mask_of(points)
            if label == "__ignore__":
                classes[mask] = -1
                continue
            k += 1
            classes[mask], instances[mask] = names.index(label), k
            kept.append((label, mask))
        instances[classes == -1] = 0
        save_indexed(classes, root / class_dir / f"{name}.png")  # -1 becomes 255, as in labelme's lblsave
        save_indexed(instances, root / object_dir / f"{name}.png")
        if png_folders:
            for folder, array in (("SegmentationClass", classes), ("SegmentationObject", instances)):
                (root / folder).mkdir(exist_ok=True)
                np.save(root / folder / f"{name}.npy", array)
        drawn[f"{name}.jpg"] = kept
    return drawn


@pytest.mark.parametrize("png_folders", [False, True], ids=["png_in_segmentation_folders", "png_folders"])
def test_labelme_voc_export_with_class_names_txt(tmp_path, png_folders):
    drawn = write_labelme_voc_export(tmp_path / "voc", png_folders)
    summary = convert_voc(tmp_path / "voc", tmp_path / "coco")
    assert summary["categories"] == ["ship", "tank"]  # class_names.txt, _background_ dropped
    assert summary["train_images"] + summary["val_images"] == 10
    found = converted_annotations(tmp_path / "coco")
    for name, objects in drawn.items():
        assert len(found[name]) == len(objects) == 3  # the ignored region is no instance
        for (label, mask), (want_label, want_mask) in zip(found[name], objects):
            assert label == want_label and iou(mask, want_mask) > 0.9
    assert check_coco_dataset(tmp_path / "coco", tmp_path / "out", progress=False)["check_pass"] is True


def test_voc_without_a_class_list_uses_the_20_pascal_classes(tmp_path):
    root = tmp_path / "voc"
    rng = np.random.default_rng(3)
    (root / "Annotations").mkdir(parents=True)
    (root / "JPEGImages").mkdir()
    for i in range(4):
        image, objects = scene(rng)
        name = f"{i:04d}"
        Image.fromarray(image).save(root / "JPEGImages" / f"{name}.jpg")
        (root / "Annotations" / f"{name}.xml").write_text(  # no <object>: the classes come from the class PNG
            f"<annotation><filename>{name}.jpg</filename><size><width>{SIZE[0]}</width>"
            f"<height>{SIZE[1]}</height><depth>3</depth></size></annotation>")
        classes, instances = np.zeros((SIZE[1], SIZE[0]), np.uint8), np.zeros((SIZE[1], SIZE[0]), np.uint8)
        for k, (index, (_, points)) in enumerate(zip((15, 7), objects), start=1):  # person, car
            mask = mask_of(points)
            classes[mask], instances[mask] = index, k
        save_indexed(classes, root / "SegmentationClass" / f"{name}.png")
        save_indexed(instances, root / "SegmentationObject" / f"{name}.png")
    summary = convert_voc(root, tmp_path / "coco")
    assert summary["categories"] == list(VOC_CLASSES) and len(VOC_CLASSES) == 20
    assert VOC_CLASSES[0] == "aeroplane" and VOC_CLASSES[14] == "person" and VOC_CLASSES[6] == "car"
    coco = load_coco(tmp_path / "coco" / "annotations" / "instance_train.json")
    assert {coco.cats[a["category_id"]]["name"]: a["category_id"] for a in coco.anns.values()} == \
        {"person": 15, "car": 7}  # category ids are the palette indices


# ----------------------------------------------------------------------------- a train split without annotations
def test_train_split_without_annotations_fails_with_a_fix(tmp_path):
    ds = tmp_path / "ds"
    generate_sample(ds, num_train=12, num_val=4, image_size=64, seed=4, progress=False)
    path = ds / "annotations" / "instance_train.json"
    data = json.loads(path.read_text())
    data["annotations"] = []
    path.write_text(json.dumps(data))
    result = check_coco_dataset(ds, tmp_path / "out", progress=False)
    assert result["check_pass"] is False
    assert result["problem_counts"]["errors"] == {"no_train_annotations": 1}
    message = result["errors"][0]["message"]
    assert "none of its 12 images has an annotation" in message
    assert "annotate objects in the train images" in message and "CheckDataset.split" in message
    val_path = ds / "annotations" / "instance_val.json"
    val = json.loads(val_path.read_text())
    val["annotations"] = []
    val_path.write_text(json.dumps(val))
    result = check_coco_dataset(ds, tmp_path / "out2", progress=False)
    assert result["problem_counts"]["errors"] == {"no_train_annotations": 1}  # an empty val is only warned about
    assert result["problem_counts"]["warnings"]["background_images"] == 2
