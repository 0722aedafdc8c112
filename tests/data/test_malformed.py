"""check_coco_dataset on deliberately broken copies of a tiny generated sample."""
import json
import shutil

import numpy as np
import pytest
from conftest import tiny_sample
from PIL import ImageFile
from pycocotools import mask as mask_utils

from tutorial_lib.data.check import check_coco_dataset

TRAIN, VAL = "annotations/instance_train.json", "annotations/instance_val.json"


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return tiny_sample(tmp_path_factory, num_train=12, seed=3)


@pytest.fixture
def ds(tiny, tmp_path):
    copy = tmp_path / "ds"
    shutil.copytree(tiny, copy)
    return copy


def edit(ds, rel, change):
    path = ds / rel
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))
    return data


def first_ann(data):
    return data["annotations"][0]


def check(ds, tmp_path):
    return check_coco_dataset(ds, tmp_path / "out", num_demo=2, progress=False)


def kinds(result, level="errors"):
    return result["problem_counts"][level]


def messages(result, kind):
    return [p["message"] for p in result["errors"] + result["warnings"] if p["kind"] == kind]


# ----------------------------------------------------------------------------- breakers, one per problem
def _missing_val(ds):
    (ds / VAL).unlink()


def _truncated_json(ds):
    text = (ds / TRAIN).read_text()
    (ds / TRAIN).write_text(text[: len(text) // 2])


def _binary_json(ds):
    (ds / TRAIN).write_bytes(b"\xff\xfe\x00garbage")


def _top_level_list(ds):
    (ds / VAL).write_text("[]")


def _images_not_a_list(ds):
    edit(ds, VAL, lambda d: d.update(images={"id": 1}))


def _bbox_missing(ds):
    edit(ds, TRAIN, lambda d: first_ann(d).pop("bbox"))


def _image_file_missing(ds):
    (ds / "images" / "00001.jpg").unlink()


def _image_garbage(ds):
    (ds / "images" / "00001.jpg").write_bytes(b"not an image at all")


def _image_truncated(ds):
    data = (ds / "images" / "00001.jpg").read_bytes()
    (ds / "images" / "00001.jpg").write_bytes(data[: len(data) // 2])


def _image_size_differs(ds):
    edit(ds, TRAIN, lambda d: d["images"][1].update(width=100))


def _unknown_image_id(ds):
    edit(ds, TRAIN, lambda d: first_ann(d).update(image_id=999))


def _unknown_category_id(ds):
    edit(ds, TRAIN, lambda d: first_ann(d).update(category_id=42))


def _duplicate_image_id(ds):
    edit(ds, TRAIN, lambda d: d["images"][2].update(id=d["images"][1]["id"]))


def _duplicate_annotation_id(ds):
    edit(ds, TRAIN, lambda d: d["annotations"][1].update(id=d["annotations"][0]["id"]))


def _two_point_polygon(ds):
    edit(ds, TRAIN, lambda d: first_ann(d).update(segmentation=[[10, 10, 20, 20]]))


def _collinear_polygon(ds):
    edit(ds, TRAIN, lambda d: first_ann(d).update(segmentation=[[10, 10, 20, 20, 30, 30]]))


def _empty_segmentation(ds):
    edit(ds, TRAIN, lambda d: first_ann(d).update(segmentation=[]))


def _outside_image(ds):
    edit(ds, TRAIN, lambda d: first_ann(d).update(segmentation=[[10, 10, 300, 10, 300, 40, 10, 40]]))


def _bbox_off(ds):
    edit(ds, TRAIN, lambda d: first_ann(d).update(bbox=[0, 0, 90, 90]))


def _categories_differ(ds):
    edit(ds, VAL, lambda d: d["categories"][0].update(name="plane"))


def _rle_wrong_size(ds):
    edit(ds, TRAIN, lambda d: first_ann(d).update(segmentation={"size": [50, 50], "counts": [2500]}))


def _rle_bad_string(ds):
    edit(ds, TRAIN, lambda d: first_ann(d).update(segmentation={"size": [96, 96], "counts": "~~~"}))


def _rle_short(ds):
    edit(ds, TRAIN, lambda d: first_ann(d).update(segmentation={"size": [96, 96], "counts": [10, 20]}))


def _iscrowd_two(ds):
    edit(ds, TRAIN, lambda d: first_ann(d).update(iscrowd=2))


def _file_name_escapes(ds):
    edit(ds, TRAIN, lambda d: d["images"][0].update(file_name="../secret.jpg"))


def _no_categories(ds):
    edit(ds, TRAIN, lambda d: d.update(categories=[]))
    edit(ds, VAL, lambda d: d.update(categories=[]))


ERROR_CASES = [
    (_missing_val, "missing_annotation_file", ["instance_val.json does not exist", "add it"]),
    (_truncated_json, "invalid_json", ["instance_train.json is not valid JSON (line", "re-export"]),
    (_binary_json, "invalid_json", ["instance_train.json is not UTF-8"]),
    (_top_level_list, "wrong_type", ["instance_val.json: the top level must be a JSON object", "got list"]),
    (_images_not_a_list, "wrong_type", ["'images' must be a list, got dict"]),
    (_bbox_missing, "wrong_type", ["annotations[0] (id 1)", "'bbox' must be list, got nothing (missing)"]),
    (_image_file_missing, "missing_image_file", ["image id 2 (00001.jpg)", "images/00001.jpg does not exist"]),
    (_image_garbage, "unreadable_image", ["image id 2 (00001.jpg)", "cannot be decoded"]),
    (_image_truncated, "unreadable_image", ["images/00001.jpg cannot be decoded", "truncated"]),
    (_image_size_differs, "image_size_mismatch", ["image id 2", "96x96 (width x height) but the JSON says 100x96"]),
    (_unknown_image_id, "unknown_image_id", ["annotation id 1 refers to image_id 999", "fix image_id"]),
    (_unknown_category_id, "unknown_category_id", ["annotation id 1 (image id", "category_id 42"]),
    (_duplicate_image_id, "duplicate_image_id", ["image id 2 is used twice"]),
    (_duplicate_annotation_id, "duplicate_annotation_id", ["annotation id 1 is used twice"]),
    (_two_point_polygon, "degenerate_segmentation", ["annotation id 1", "polygon 0 has 2 point(s)"]),
    (_collinear_polygon, "degenerate_segmentation", ["polygon 0 has zero area"]),
    (_empty_segmentation, "degenerate_segmentation", ["the segmentation is an empty list"]),
    (_outside_image, "out_of_bounds", ["x 10..300", "outside the 96x96 image", "clip"]),
    (_bbox_off, "bbox_mismatch", ["annotation id 1", "does not match the mask's box", "toBbox"]),
    (_categories_differ, "category_mismatch", ["same id, other name: 1=airplane/plane"]),
    (_rle_wrong_size, "rle_size_mismatch", ["RLE size [50, 50]", "[96, 96]"]),
    (_rle_bad_string, "invalid_rle", ["compressed RLE string"]),
    (_rle_short, "invalid_rle", ["cover 30 pixels, not height x width = 9216"]),
    (_iscrowd_two, "wrong_type", ["iscrowd must be 0 or 1, got 2"]),
    (_file_name_escapes, "bad_file_name", ["image id 1 (../secret.jpg)", "relative to images/"]),
    (_no_categories, "no_categories", ["lists no categories"]),
]


@pytest.mark.parametrize("breaker, kind, fragments", ERROR_CASES, ids=[c[0].__name__.strip("_") for c in ERROR_CASES])
def test_each_problem_fails_the_check_with_a_clear_message(ds, tmp_path, breaker, kind, fragments):
    breaker(ds)
    result = check(ds, tmp_path)
    assert result["done_flag"] is True and result["check_pass"] is False
    assert kind in kinds(result), result["problem_counts"]
    found = messages(result, kind)
    assert any(all(f in m for f in fragments) for m in found), found
    written = json.loads((tmp_path / "out" / "check_dataset_result.json").read_text())
    assert written["check_pass"] is False and written["errors"] == result["errors"]
    assert (tmp_path / "out" / "check_dataset" / "histogram.png").stat().st_size > 1000


def test_every_problem_is_reported_not_just_the_first(ds, tmp_path):
    for breaker in (_image_file_missing, _two_point_polygon, _bbox_off, _unknown_category_id):
        breaker(ds)
    edit(ds, TRAIN, lambda d: d["annotations"][2].update(category_id=77))
    result = check(ds, tmp_path)
    counts = kinds(result)
    assert counts["missing_image_file"] == 1 and counts["unknown_category_id"] == 2
    assert counts["degenerate_segmentation"] == 1  # annotation 1: its bbox is not compared with a broken mask
    assert len(result["errors"]) == sum(counts.values()) == 4
    assert all(p["file"] == TRAIN for p in result["errors"])


def test_truncated_image_is_found_even_when_pil_is_told_to_tolerate_it(ds, tmp_path, monkeypatch):
    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", True)  # what importing ppdet's trainer does
    _image_truncated(ds)
    assert kinds(check(ds, tmp_path)) == {"unreadable_image": 1}
    assert ImageFile.LOAD_TRUNCATED_IMAGES is True  # restored for the caller


def test_category_mismatch_still_draws_a_histogram_with_both_names(ds, tmp_path):
    _categories_differ(ds)
    result = check(ds, tmp_path)
    assert "plane" not in result["attributes"]["class_names"]  # train's names win in the report
    assert (tmp_path / "out" / "check_dataset" / "histogram.png").is_file()


# ----------------------------------------------------------------------------- warnings: reported, check passes
def test_background_images_are_counted_and_reported(ds, tmp_path):
    data = json.loads((ds / TRAIN).read_text())
    annotated = {a["image_id"] for a in data["annotations"]}
    baseline = sum(1 for img in data["images"] if img["id"] not in annotated)
    target = next(img["id"] for img in data["images"] if img["id"] in annotated)
    edit(ds, TRAIN, lambda d: d.update(annotations=[a for a in d["annotations"] if a["image_id"] != target]))
    result = check(ds, tmp_path)
    assert result["check_pass"] is True
    assert result["attributes"]["train_background_images"] == baseline + 1
    assert result["attributes"]["train_images"] == 12  # kept, not dropped
    assert f"{baseline + 1} of 12 images have no annotation" in messages(result, "background_images")[0]


def test_few_images_and_unused_files_are_warnings(ds, tmp_path):
    (ds / "images" / "stray.jpg").write_bytes((ds / "images" / "00000.jpg").read_bytes())
    result = check(ds, tmp_path)
    assert result["check_pass"] is True and not result["errors"]
    warnings = kinds(result, "warnings")
    assert warnings["few_images"] == 1 and "only 4 images" in messages(result, "few_images")[0]  # val only
    assert warnings["unused_image_files"] == 1 and "stray.jpg" in messages(result, "unused_image_files")[0]


def test_non_ascii_and_space_file_names_work(ds, tmp_path):
    name = "航拍 图像 (1).jpg"
    data = json.loads((ds / TRAIN).read_text())
    image = min(data["images"], key=lambda i: (i["id"] not in {a["image_id"] for a in data["annotations"]}, i["id"]))
    (ds / "images" / image["file_name"]).rename(ds / "images" / name)
    edit(ds, TRAIN, lambda d: next(i for i in d["images"] if i["id"] == image["id"]).update(file_name=name))
    result = check(ds, tmp_path)
    assert result["check_pass"] is True, result["errors"]
    assert "check_dataset/demo_img/train_航拍 图像 (1).jpg" in result["attributes"]["train_sample_paths"]
    written = (tmp_path / "out" / "check_dataset_result.json").read_text(encoding="utf-8")
    assert name in written


def _runs(mask):
    """Uncompressed COCO RLE counts (column-major, starting with a run of zeros)."""
    flat = mask.flatten(order="F").astype(np.int8)
    edges = np.flatnonzero(np.diff(flat)) + 1
    runs = np.diff(np.concatenate([[0], edges, [flat.size]])).tolist()
    return runs if flat[0] == 0 else [0] + runs


def test_rle_and_polygon_segmentations_and_crowd_are_accepted(ds, tmp_path):
    def to_rle(data):
        for k, ann in enumerate(data["annotations"][:2]):
            rle = mask_utils.merge(mask_utils.frPyObjects(ann["segmentation"], 96, 96))
            if k == 0:  # compressed string counts
                ann["segmentation"] = {"size": [96, 96], "counts": rle["counts"].decode("ascii")}
            else:  # uncompressed counts, the usual form of crowd regions
                ann["segmentation"] = {"size": [96, 96], "counts": _runs(mask_utils.decode(rle))}
                ann["iscrowd"] = 1
    edit(ds, TRAIN, to_rle)
    result = check(ds, tmp_path)
    assert result["check_pass"] is True, result["errors"]
    assert result["attributes"]["train_crowd_annotations"] == 1
    assert result["attributes"]["train_annotations"] == len(json.loads((ds / TRAIN).read_text())["annotations"])


def _tag_orientation(path, orientation):
    """Re-save ``path`` (same pixels, JPEG) with an EXIF orientation tag."""
    from PIL import Image

    with Image.open(path) as image:
        pixels = image.copy()
    exif = Image.Exif()
    exif[0x0112] = orientation
    pixels.save(path, "JPEG", quality=95, exif=exif.tobytes())


def test_exif_orientation_is_checked_against_what_opencv_decodes(ds, tmp_path):
    """OpenCV (paddledet's Decode, the predictor) applies EXIF orientation; PIL's size does not. A 90° tag swaps
    width and height of what training sees: an error when the JSON has the raw size, a warning when it matches."""
    import cv2

    data = json.loads((ds / TRAIN).read_text())
    first, second = data["images"][0], data["images"][1]
    _tag_orientation(ds / "images" / first["file_name"], 6)  # 90°: OpenCV decodes it 96 wide, 96 high ...
    assert cv2.imread(str(ds / "images" / first["file_name"])).shape[:2] == (96, 96)  # (square: sizes agree)
    edit(ds, TRAIN, lambda d: d["images"][0].update(width=96, height=96))
    _tag_orientation(ds / "images" / second["file_name"], 3)  # 180°: same size, turned pixels
    result = check(ds, tmp_path)
    assert result["check_pass"] is True
    warned = messages(result, "exif_orientation")
    assert len(warned) == 2 and any("orientation 6 (rotated 90° clockwise)" in m for m in warned)
    # a non-square image with a 90° tag: the JSON's raw width x height is not what OpenCV decodes
    from PIL import Image

    path = ds / "images" / first["file_name"]
    with Image.open(path) as image:
        wide = image.crop((0, 0, 96, 48))
    exif = Image.Exif()
    exif[0x0112] = 6
    wide.save(path, "JPEG", exif=exif.tobytes())
    assert cv2.imread(str(path)).shape[:2] == (96, 48)
    edit(ds, TRAIN, lambda d: d["images"][0].update(width=96, height=48))
    result = check(ds, tmp_path)
    assert result["check_pass"] is False
    found = messages(result, "image_size_mismatch")
    assert any("48x96 (width x height) once its EXIF orientation (rotated 90° clockwise) is applied" in m
               and "exif_transpose" in m for m in found), found
