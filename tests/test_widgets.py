"""The notebooks' browsers (tutorial_lib.widgets): set a control the way a reader would, check what is drawn."""
import json
import re

import numpy as np
import pandas as pd
import pytest

from tutorial_lib import widgets as tw
from tutorial_lib.predict import InstanceSegResult
from tutorial_lib.structures import Instances
from tutorial_lib.viz import class_color


def _decoded(browser):
    """The picture the widget holds (decoded from the Image widget's bytes), RGB."""
    import cv2

    return cv2.imdecode(np.frombuffer(browser.view.value, np.uint8), cv2.IMREAD_COLOR)[..., ::-1]


@pytest.fixture(scope="module")
def tiny_dataset(tmp_path_factory):
    from tutorial_lib.data.sample import generate_sample

    out = tmp_path_factory.mktemp("widgets") / "sample"
    generate_sample(out, preset="ci", num_train=6, num_val=2, image_size=128, seed=0, progress=False)
    return out


def _two_instances(h=64, w=80):
    masks = np.zeros((2, h, w), bool)
    masks[0, 5:20, 5:25] = True
    masks[1, 30:60, 40:75] = True
    return Instances((h, w), boxes=[[5, 5, 25, 20], [40, 30, 75, 60]], scores=[0.9, 0.3], class_ids=[0, 5],
                     masks=masks)


# ----------------------------------------------------------------------------- DatasetBrowser
def test_dataset_browser_slider_filter_and_toggles(tiny_dataset):
    browser = tw.DatasetBrowser(tiny_dataset, display_size=0)
    coco = browser.coco
    busiest = max(browser.image_ids, key=lambda i: len(coco.getAnnIds(imgIds=[i])))
    browser.index.value = browser.image_ids.index(busiest)
    first = browser.image()
    assert np.array_equal(_decoded(browser).shape, first.shape)
    assert len(browser.shown()) == len(coco.getAnnIds(imgIds=[busiest]))

    other = next(i for i in browser.image_ids if i != busiest)
    browser.index.value = browser.image_ids.index(other)       # the slider move redraws the widget's picture
    assert not np.array_equal(browser.image(), first)
    assert browser.coco.imgs[other]["file_name"] in browser.caption.value

    browser.index.value = browser.image_ids.index(busiest)
    one_class = int(browser.shown().class_ids[0])
    browser.classes.value = (one_class,)
    assert set(browser.shown().class_ids.tolist()) == {one_class}
    n_class = sum(a["category_id"] == one_class for a in coco.loadAnns(coco.getAnnIds(imgIds=[busiest])))
    assert len(browser.shown()) == n_class

    with_masks = browser.image()
    browser.show_masks.value = False
    browser.show_boxes.value = False
    bare = browser.image()
    assert not np.array_equal(with_masks, bare)
    from PIL import Image

    raw = np.asarray(Image.open(tiny_dataset / "images" / coco.imgs[busiest]["file_name"]).convert("RGB")).astype(int)
    changed = lambda picture: (np.abs(picture.astype(int) - raw).sum(-1) > 0).mean()  # noqa: E731
    assert changed(bare) < changed(with_masks)      # without masks and boxes only the label tags differ


def test_dataset_browser_problem_list_shows_each_problems_image(tiny_dataset):
    coco = tw.DatasetBrowser(tiny_dataset).coco
    target = sorted(coco.imgs)[-1]
    check = {"errors": [{"level": "error", "kind": "bbox_mismatch", "file": "annotations/instance_train.json",
                         "message": f"annotations/instance_train.json: annotation id 7 (image id {target}, "
                                    f"{coco.imgs[target]['file_name']}): bbox does not fit"}],
             "warnings": [{"level": "warning", "kind": "background_image", "file": "annotations/instance_train.json",
                           "message": "no image id here"}]}
    browser = tw.DatasetBrowser(tiny_dataset, check_result=check)
    assert [p["image_id"] for p in browser.problems] == [target, None]
    assert browser.index.value == 0 and browser.image_id != target
    browser.problem.value = 0
    assert browser.image_id == target
    assert "bbox_mismatch" in browser.caption.value


def test_browser_display_bundle_has_widget_and_static_png(tiny_dataset):
    browser = tw.DatasetBrowser(tiny_dataset)
    bundle = browser._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle
    assert bundle["image/png"][:8] == b"\x89PNG\r\n\x1a\n"


# ----------------------------------------------------------------------------- RunComparer
def test_run_comparer_overlays_the_picked_runs(tmp_path):
    runs = {}
    for name, offset in [("lr 0.005", 0.1), ("lr 0.01", 0.3), ("lr 0.02", 0.2)]:
        folder = tmp_path / name
        folder.mkdir()
        pd.DataFrame({"epoch": [1, 2, 3], "loss": [3.0, 2.0, 1.5 - offset],
                      "mask_AP": [0.0, offset / 2, offset]}).to_csv(folder / "metrics.csv", index=False)
        runs[name] = folder
    comparer = tw.RunComparer(runs)
    assert set(comparer.curves()) == set(runs)
    np.testing.assert_allclose(comparer.curves()["lr 0.01"][1], [0.0, 0.15, 0.3])
    all_three = comparer.image()
    comparer.runs.value = ("lr 0.02",)
    assert list(comparer.curves()) == ["lr 0.02"]
    one = comparer.image()
    assert one.shape == all_three.shape and not np.array_equal(one, all_three)
    # the colour of the first line of matplotlib's cycle is drawn; with one run the second colour is not
    blue, orange = np.array([31, 119, 180]), np.array([255, 127, 14])
    assert (np.abs(one.astype(int) - blue).sum(-1) < 30).any()
    assert not (np.abs(one.astype(int) - orange).sum(-1) < 30).any()
    assert (np.abs(all_three.astype(int) - orange).sum(-1) < 30).any()
    comparer.metric.value = "loss"
    np.testing.assert_allclose(comparer.curves()["lr 0.02"][1], [3.0, 2.0, 1.3])


def test_run_comparer_without_metrics_is_a_user_error(tmp_path):
    from tutorial_lib.errors import UserError

    with pytest.raises(UserError, match="metrics.csv"):
        tw.RunComparer({"missing": tmp_path / "nothing"})


# ----------------------------------------------------------------------------- PredictionBrowser
def test_prediction_browser_threshold_and_class_filter_redraw_stored_predictions():
    inst = _two_instances()
    image = np.full((64, 80, 3), 40, np.uint8)
    labels = ["airplane", "storage_tank", "vehicle", "tennis_court", "baseball_diamond", "ship"]
    result = InstanceSegResult(None, inst, labels, image=image)
    browser = tw.PredictionBrowser([result], threshold=0.5, display_size=0)
    assert browser.shown().class_ids.tolist() == [0]
    high = _decoded(browser)
    browser.threshold.value = 0.2                          # the slider move: both instances, nothing re-run
    assert browser.shown().class_ids.tolist() == [0, 5]
    low = _decoded(browser)
    assert not np.array_equal(high, low)
    ship = np.array(class_color(5))
    region = browser.image()[40:55, 45:70].reshape(-1, 3).astype(int)
    assert (np.abs(region - (40 * 0.55 + ship * 0.45)).sum(-1) < 6).mean() > 0.5   # ship tint where its mask is
    browser.classes.value = (5,)
    assert browser.shown().class_ids.tolist() == [5]
    assert "1 of 2 stored instances" in browser.caption.value
    assert [label for label, _ in browser.classes.options] == ["all classes", "airplane", "ship"]


def test_prediction_browser_takes_image_instance_pairs():
    inst = _two_instances()
    browser = tw.PredictionBrowser([(np.zeros((64, 80, 3), np.uint8), inst), (np.zeros((64, 80, 3), np.uint8),
                                                                                inst[:1])],
                                   labels={0: "airplane", 5: "ship"}, threshold=0.0, titles=["a", "b"])
    assert len(browser.shown()) == 2
    browser.picker.value = 1
    assert len(browser.shown()) == 1 and browser.caption.value.startswith("b:")


# ----------------------------------------------------------------------------- SceneViewer
def test_scene_viewer_draws_tiles_instances_and_geojson_polygons():
    from rasterio.transform import from_origin

    scene = np.zeros((64, 80, 3), np.uint8)
    inst = _two_instances()
    transform = from_origin(500000.0, 4600000.0, 0.5, 0.5)
    # one polygon in map coordinates (0.5 m pixels, north up) around pixels x 40..75, y 30..60
    ring = [(500000.0 + 0.5 * x, 4600000.0 - 0.5 * y) for x, y in [(40, 30), (75, 30), (75, 60), (40, 60), (40, 30)]]
    geojson = {"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {"cls_id": 5}, "geometry": {"type": "Polygon", "coordinates": [ring]}}]}
    tiles = [(0, 0, 48, 48), (32, 0, 80, 48), (0, 16, 48, 64), (32, 16, 80, 64)]
    viewer = tw.SceneViewer(scene, inst, labels={0: "airplane", 5: "ship"}, tiles=tiles, geojson=geojson,
                            transform=transform, display_size=0)
    np.testing.assert_allclose(viewer.polygons[0][1][:4], [[40, 30], [75, 30], [75, 60], [40, 60]], atol=1e-6)
    everything = viewer.image()
    assert (everything[0, 47] == (255, 255, 0)).all()          # a tile border
    viewer.show_labels.value = True                              # label tags: off by default in a crowded scene
    assert (np.abs(viewer.image().astype(int) - everything).sum(-1) > 0).sum() > 20
    viewer.show_labels.value = False
    viewer.show_instances.value = False
    viewer.show_tiles.value = False
    polygons_only = viewer.image()
    assert polygons_only[45, 40].any() and polygons_only[10, 10].sum() == 0
    viewer.show_polygons.value = False
    assert viewer.image().sum() == 0
    assert "nothing overlaid" in viewer.caption.value
    viewer.show_instances.value = True
    viewer.threshold.value = 0.5
    assert viewer.image()[10, 10].any() and not viewer.image()[45, 60].any()


# ----------------------------------------------------------------------------- helpers
def test_table_formats_numbers_missing_values_and_drops_empty_columns():
    styled = tw.table([{"name": "a", "ms": 9800.635639, "ap": 0.41234, "note": "", "size": None, "count": 3},
                       {"name": "b", "ms": None, "ap": 0.5, "note": "", "size": 12.5, "count": 12000}])
    cells = re.findall(r">([^<>]*)</td>", styled.to_html())
    # one precision per column: 3 significant digits for its largest value, thousands separators, "-" for missing
    assert cells == ["a", "9,801", "0.412", "-", "3", "b", "-", "0.500", "12.5", "12,000"]
    assert "note" not in styled.to_html()
    assert "&lt;array&gt;" in tw.table([{"input": "<array>"}]).to_html()       # text is text, not HTML
    assert "(no rows)" in tw.table([]).to_html()


def test_fold_summarises_and_keeps_the_rest():
    folded = tw.fold("inference.yml", "a: 1\nb: 2\nc: 3\n")
    assert repr(folded) == "inference.yml (3 lines)"
    assert "<details>" in folded._repr_html_() and "c: 3" in folded._repr_html_()
    assert "&quot;b&quot;: 2" in tw.fold("dict", {"a": 1, "b": 2})._repr_html_()
    result, text = tw.capture_output(lambda: print("long report") or 42)
    assert result == 42 and text == "long report\n"


def test_run_folders_and_default_models(tmp_path):
    assert tw.default_model("cpu") == "MaskRCNN-ResNet18-FPN-S"
    assert tw.default_model("gpu:0") == "Mask-RT-DETR-H"
    assert tw.run_dir(tmp_path, True) != tw.run_dir(tmp_path, False)
    assert tw.trained_model_dir(tmp_path, False, "M").relative_to(tmp_path).parts == (
        "full", "M", "train", "best_model", "inference")
    json.dumps(str(tw.run_dir(tmp_path, True, "M")))


def test_scene_viewer_reprojects_lon_lat_geojson_onto_the_raster():
    from rasterio.transform import from_origin
    from rasterio.warp import transform as reproject

    transform = from_origin(500000.0, 4600000.0, 0.5, 0.5)
    pixels = [(40, 30), (75, 30), (75, 60), (40, 60), (40, 30)]
    lon, lat = reproject("EPSG:32633", "EPSG:4326", [500000.0 + 0.5 * x for x, _ in pixels],
                         [4600000.0 - 0.5 * y for _, y in pixels])
    geojson = {"type": "FeatureCollection", "features": [{"type": "Feature", "properties": {"cls_id": 1},
               "geometry": {"type": "Polygon", "coordinates": [list(map(list, zip(lon, lat)))]}}]}
    viewer = tw.SceneViewer(np.zeros((64, 80, 3), np.uint8), _two_instances(), tiles=[], geojson=geojson,
                            transform=transform, crs="EPSG:32633")
    np.testing.assert_allclose(viewer.polygons[0][1], pixels, atol=1e-3)


def test_dataset_browser_draws_an_image_whose_annotation_is_broken(tiny_dataset, tmp_path):
    import shutil

    broken = tmp_path / "broken"
    shutil.copytree(tiny_dataset, broken)
    ann_file = broken / "annotations" / "instance_train.json"
    data = json.loads(ann_file.read_text())
    data["annotations"][0]["segmentation"] = [[10, 10, 20, 20]]   # two points: pycocotools cannot decode it
    (broken / "images" / data["images"][1]["file_name"]).unlink()
    ann_file.write_text(json.dumps(data))
    browser = tw.DatasetBrowser(broken)
    first = data["annotations"][0]["image_id"]
    browser.index.value = browser.image_ids.index(first)
    assert len(browser.shown()) == len([a for a in data["annotations"] if a["image_id"] == first])
    browser.index.value = browser.image_ids.index(data["images"][1]["id"])
    assert "image file missing" in browser.caption.value
    assert (browser.image() == 128).mean() > 0.3      # the grey placeholder


def test_small_pictures_are_enlarged_with_exact_masks(tiny_dataset):
    """A 128 px image is drawn 4x larger (labels legible at 512 px), masks enlarged pixel for pixel."""
    inst = _two_instances()
    big_image, big = tw._upscale(np.zeros((64, 80, 3), np.uint8), inst, 4)
    assert big_image.shape == (256, 320, 3) and big.image_size == (256, 320)
    np.testing.assert_array_equal(big.full_masks()[:, ::4, ::4], inst.full_masks())
    np.testing.assert_allclose(big.boxes, inst.boxes * 4)
    cropped = tw._upscale(np.zeros((64, 80, 3), np.uint8), inst.to_cropped(), 4)[1]
    np.testing.assert_array_equal(cropped.full_masks(), big.full_masks())
    browser = tw.DatasetBrowser(tiny_dataset)            # 128 px sample images, display_size 512
    assert browser.image().shape[:2] == (512, 512) and browser.view.width == "512"
