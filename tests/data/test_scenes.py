"""The realistic aerial renderer (``tutorial_lib.data.scenes``) and the sample presets that use it."""
import hashlib
import json

import cv2
import numpy as np
import pytest
from pycocotools import mask as mask_utils
from shapely.geometry import Polygon

from conftest import tree_digest
from tutorial_lib.data import scenes
from tutorial_lib.data.categories import NWPU_CLASSES
from tutorial_lib.data.check import check_report
from tutorial_lib.data.sample import AERIAL_PRESETS, generate_sample, preset_params, render_sample_image

# tree_digest of generate_sample(DIR, preset="ci", num_train=1, num_val=1, seed=0, progress=False), computed with the
# code as it was before the aerial presets were added (git 1acb07d; opencv-python-headless 4.6.0.66). The clip-art
# presets must stay byte-identical: tests and the shipped quick-start weights depend on them.
CI_TWO_IMAGE_DIGEST = "1db2a75c4fae77e463058a924d1f92632d2179368dc31dbe4d02f1acd2cef942"


def _digest(image, annotations):
    return hashlib.sha256(image.tobytes() + json.dumps(annotations).encode()).hexdigest()


def _mask(annotation, size):
    return mask_utils.decode(mask_utils.merge(mask_utils.frPyObjects(annotation["segmentation"], size, size)))


def test_same_seed_gives_identical_bytes():
    for context in ("airport", "harbor", "sports", "river"):
        runs = [scenes.render_aerial_scene(np.random.default_rng((3, 1)), 256, "A-summer", 0.6, context=context)
                for _ in range(2)]
        assert _digest(*runs[0]) == _digest(*runs[1])
        other = scenes.render_aerial_scene(np.random.default_rng((3, 2)), 256, "A-summer", 0.6, context=context)
        assert _digest(*other) != _digest(*runs[0])


def test_any_size_style_and_gsd_draws_valid_images():
    for k, context in enumerate(scenes.CONTEXTS):
        for size, gsd in ((64, 0.3), (96, 2.0), (320, 1.0)):
            style = list(scenes.STYLES)[k % len(scenes.STYLES)]
            image, annotations = scenes.render_aerial_scene(np.random.default_rng((k, size)), size, style, gsd,
                                                            context=context)
            assert image.shape == (size, size, 3) and image.dtype == np.uint8
            for name, annotation in annotations:
                x, y, w, h = annotation["bbox"]
                assert name in NWPU_CLASSES and 0 <= x and 0 <= y and x + w <= size and y + h <= size
    background = scenes.render_aerial_scene(np.random.default_rng(5), 128, "B-winter", 0.4, background_only=True)
    assert background[1] == []
    few = scenes.render_aerial_scene(np.random.default_rng(6), 256, "A-spring", 0.8, num_objects=2,
                                     context="tank_farm")
    assert len(few[1]) <= 2


def test_pretrain_and_reader_namespaces_never_share_an_image():
    pretrain, reader = preset_params("pretrain", image_size=64), preset_params("reader", image_size=64)
    assert pretrain["namespace"] != reader["namespace"]
    pretrain_hashes = {_digest(*render_sample_image(pretrain, i)[:2]) for i in range(200)}
    reader_hashes = [_digest(*render_sample_image(reader, i)[:2]) for i in range(16)]
    assert len(pretrain_hashes) == 200
    assert not pretrain_hashes.intersection(reader_hashes)
    assert _digest(*render_sample_image(pretrain, 0)[:2]) != reader_hashes[0]


def test_reader_ci_dataset_is_valid_coco_and_the_start_of_reader(tmp_path):
    small = dict(num_train=4, num_val=2, progress=False)
    generate_sample(tmp_path / "reader-ci", preset="reader-ci", **small)
    generate_sample(tmp_path / "reader", preset="reader", **small)
    report = check_report(tmp_path / "reader-ci", tmp_path / "check", num_demo=1, progress=False)
    assert report.check_pass and report.errors == []
    train = json.loads((tmp_path / "reader-ci/annotations/instance_train.json").read_text())
    params = train["info"]["params"]
    assert (params["renderer"], params["style_family"], params["gsd_range"]) == ("aerial", "reader", [0.3, 0.5])
    assert params["namespace"] == preset_params("reader")["namespace"] and params["generator_version"] >= 1
    for image in train["images"]:
        assert 0.3 <= image["gsd"] <= 0.5 and image["style"] in scenes.FAMILIES["reader"]
    for name in ("00000.jpg", "00003.jpg", "00004.jpg", "00005.jpg"):  # train and val images alike
        assert (tmp_path / "reader-ci/images" / name).read_bytes() == (tmp_path / "reader/images" / name).read_bytes()


def test_reader_vehicles_are_at_least_8_px_long():
    lo, hi = AERIAL_PRESETS["reader"]["gsd_range"]
    lengths = []
    for k, gsd in enumerate(np.linspace(lo, hi, 6)):
        style = scenes.FAMILIES["reader"][k % 3]
        for context in ("commercial", "river"):
            image, annotations = scenes.render_aerial_scene(np.random.default_rng((11, k)), 256, style, gsd,
                                                            context=context)
            for name, annotation in annotations:
                x, y, w, h = annotation["bbox"]
                cut = min(x, y) < 1 or max(x + w, y + h) > 255
                if name != "vehicle" or cut or len(annotation["segmentation"]) != 1:
                    continue
                polygon = np.array(annotation["segmentation"][0], np.float32).reshape(-1, 2)
                (_, _), (a, b), _ = cv2.minAreaRect(polygon)
                if Polygon(polygon).area > 0.85 * a * b:  # whole (not partly hidden by a tree)
                    lengths.append(max(a, b))
    assert len(lengths) >= 30
    assert min(lengths) >= 8 - 0.02  # polygon coordinates are rounded to 0.01 px


def _background_colour(preset, count=20, size=128):
    """Mean RGB of the pixels outside every mask over the first images of a preset."""
    params = preset_params(preset, image_size=size)
    means = []
    for index in range(count):
        image, annotations, _ = render_sample_image(params, index)
        objects = np.zeros((size, size), bool)
        for _, annotation in annotations:
            objects |= _mask(annotation, size).astype(bool)
        means.append(image[~objects].mean(0))
    return np.mean(means, 0)


def test_reader_looks_like_another_sensor_and_season():
    pretrain, reader = _background_colour("pretrain"), _background_colour("reader")
    warmth = lambda rgb: rgb[0] - rgb[2]  # noqa: E731 (red minus blue)
    assert warmth(reader) > warmth(pretrain) + 12
    assert reader[0] > pretrain[0] + 15


def _court_scene(tree_at):
    """A scene with one tennis court along x at the centre and one leafy tree crown centred at ``tree_at`` (metres
    from the court's centre)."""
    scene = scenes.Scene(np.random.default_rng(0), 128, scenes.STYLES["A-summer"], 0.5)
    scene.fill(np.array([[0, 0], [128, 0], [128, 128], [0, 128]]), (0.35, 0.45, 0.25))
    scenes.tennis_courts(scene, scene.center, 0.0, 1)
    crown = scenes._crown(scene, scene.center + np.array(tree_at) / scene.gsd, 4.0, bare=False)
    court = Polygon(scene.place(scenes._box(23.77, 10.97), scene.center, 0.0))
    return scene, crown, court


@pytest.mark.parametrize("tree_at", [(11.0, 5.0), (0.0, 0.0)], ids=["corner", "inside"])
def test_a_tree_over_an_object_is_cut_out_of_its_mask(tree_at):
    scene, crown, court = _court_scene(tree_at)
    _, annotations = scene.finish()
    (name, annotation), = annotations
    assert name == "tennis_court"
    mask = _mask(annotation, 128)
    visible = court.difference(Polygon(crown))
    assert 0.05 * court.area < Polygon(crown).intersection(court).area
    assert annotation["area"] == pytest.approx(visible.area, rel=0.05)
    tree_x, tree_y = np.round(crown.mean(0)).astype(int)
    assert mask[tree_y, tree_x] == 0  # under the crown: hidden
    far_x, far_y = np.round(scene.center - [16, 0]).astype(int)
    assert mask[far_y, far_x] == 1  # elsewhere on the court: visible


def test_ci_preset_is_unchanged(tmp_path):
    generate_sample(tmp_path / "ci", preset="ci", num_train=1, num_val=1, seed=0, progress=False)
    assert tree_digest(tmp_path / "ci") == CI_TWO_IMAGE_DIGEST
