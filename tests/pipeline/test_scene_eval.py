"""Map-space evaluation of a merged scene: hand-made scenes with answers worked out by hand, and COCO's AP checked
against hotcoco on the same scene rasterised to masks."""
import json

import numpy as np
import pytest
import rasterio
from pycocotools import mask as mask_utils
from rasterio import features
from rasterio.crs import CRS
from rasterio.transform import from_origin
from shapely import affinity
from shapely.geometry import Polygon, box, mapping

import tutorial_lib as tl
from tutorial_lib.cli import main
from tutorial_lib.data.geovector import reproject
from tutorial_lib.errors import UserError
from tutorial_lib.pipeline.scene_eval import TileGrid, evaluate_scene, evaluation_crs

X0, Y0 = 500000.0, 4600000.0  # UTM 33N (EPSG:32633), metres
UTM = CRS.from_epsg(32633)


def at(geometry):
    """A shape drawn in scene metres (origin at the scene's corner) moved to its UTM position."""
    return affinity.translate(geometry, X0, Y0)


def features_of(items, **properties):
    return [{"geometry": at(g), "properties": {**properties, **extra}} for g, extra in items]


# Three ground-truth objects: A (200 m², across the seam at x = 100 m), B (400 m²), C (a car, 8 m²).
TRUTH = [(box(90, 40, 110, 50), {}), (box(20, 20, 40, 40), {}), (box(150, 70, 154, 72), {})]
# A predicted as two halves with a gap (IoU 0.475 each: no match), B found and found again (a duplicate), C missed.
SPLIT = [(box(90, 40, 99.5, 50), {"score": 0.9}), (box(100.5, 40, 110, 50), {"score": 0.8}),
         (box(20, 20, 40, 40), {"score": 0.95}), (box(21, 20, 40, 40), {"score": 0.7})]
GRID = TileGrid([at(box(0, 0, 100, 100)), at(box(100, 0, 200, 100))], UTM)


def scene(predictions, **kwargs):
    return evaluate_scene(features_of(predictions, label="object"), features_of(TRUTH, cls="object"),
                          label_class_field="cls", crs="EPSG:32633", **{"tile_grid": GRID, **kwargs})


def test_split_object_duplicate_and_miss_by_hand():
    report = scene(SPLIT)
    assert report.crs == "EPSG:32633" and (report.predictions, report.ground_truth) == (4, 3)
    # 4 predictions over 0.5: B is the one true positive; B's second copy is a duplicate; A's halves miss (0.475)
    assert report.precision == pytest.approx(1 / 4) and report.recall == pytest.approx(1 / 3)
    assert report.f1 == pytest.approx(2 * (1 / 4) * (1 / 3) / (1 / 4 + 1 / 3))
    assert (report.duplicates, report.duplicate_rate) == (1, pytest.approx(1 / 4))
    assert (report.seam_crossing, report.seam_split, report.seam_split_rate) == (1, 1, 1.0)
    # one true positive first, at every IoU threshold: precision 1 up to recall 1/3 -> 34 of 101 recall points
    assert report.ap == pytest.approx(34 / 101) and report.ap50 == report.ap75 == report.ap
    # < 100 m²: only C, missed -> 0 (not None); 100-1,000 m²: A and B, A's halves (95 m²) are outside and ignored,
    # the duplicate (380 m²) counts -> precision 1 up to recall 1/2; > 1,000 m²: no object -> None
    assert report.ap_by_area == {"< 100 m²": 0.0, "100-1,000 m²": pytest.approx(51 / 101), "> 1,000 m²": None}
    assert report.ap_by_pixel_area is None
    table = report.to_markdown()
    assert "| AP > 1,000 m² | – |" in table and "| seam-split rate | 1.000 |" in table
    assert json.loads(json.dumps(report.to_dict()))["duplicates"] == 1


def test_the_whole_object_scores_higher_and_is_not_split():
    whole = scene([(box(90, 40, 110, 50), {"score": 0.9})] + SPLIT[2:])
    split = scene(SPLIT)
    assert whole.ap > split.ap and whole.recall == pytest.approx(2 / 3)
    assert (whole.seam_crossing, whole.seam_split, whole.seam_split_rate) == (1, 0, 0.0)
    assert scene(SPLIT, tile_grid=None).seam_split_rate is None  # no grid: no seam numbers


def test_pixel_bands_with_a_pixel_size():
    report = scene(SPLIT, pixel_size=0.5)  # 32² px = 256 m², 96² px = 2,304 m²: A and C small, B medium
    assert report.ap_by_pixel_area == {"small (< 32² px)": 0.0, "medium (32²-96² px)": 1.0,
                                       "large (> 96² px)": None}


def test_files_in_two_crss_and_the_cli(tmp_path):
    """Predictions as GeoJSON in lon/lat, labels as GeoPackage in UTM: compared in UTM, the same numbers as above;
    the CLI prints the table and writes the JSON, its seams taken from the raster's tiles."""
    from pyogrio.raw import write

    preds = reproject([at(g) for g, _ in SPLIT], UTM, "EPSG:4326")
    (tmp_path / "pred.geojson").write_text(json.dumps({"type": "FeatureCollection", "features": [
        {"type": "Feature", "geometry": mapping(g), "properties": {"score": p["score"], "label": "object"}}
        for g, (_, p) in zip(preds, SPLIT)]}))
    write(str(tmp_path / "labels.gpkg"), np.array([at(g).wkb for g, _ in TRUTH], dtype=object),
          [np.array(["object"] * 3, dtype=object)], fields=["cls"], driver="GPKG", geometry_type="Polygon",
          crs="EPSG:32633")
    by_hand = scene(SPLIT)
    report = evaluate_scene(tmp_path / "pred.geojson", tmp_path / "labels.gpkg", label_class_field="cls",
                            tile_grid=GRID)
    assert report.crs == "EPSG:32633"
    for key in ("ap", "precision", "recall", "duplicate_rate", "seam_split_rate"):
        assert getattr(report, key) == pytest.approx(getattr(by_hand, key), abs=1e-6)
    with rasterio.open(tmp_path / "scene.tif", "w", driver="GTiff", width=200, height=100, count=1, dtype="uint8",
                       crs=UTM, transform=from_origin(X0, Y0 + 100, 1.0, 1.0)) as dst:
        dst.write(np.zeros((1, 100, 200), np.uint8))
    code = main(["evaluate_scene", "--pred", str(tmp_path / "pred.geojson"), "--labels", str(tmp_path / "labels.gpkg"),
                 "--label_class_field", "cls", "--tiles", str(tmp_path / "scene.tif"), "--slice_size", "100",
                 "--overlap_ratio", "0", "--json", str(tmp_path / "report.json")])
    saved = json.loads((tmp_path / "report.json").read_text())
    assert code == 0 and saved["seam_split_rate"] == 1.0 and saved["recall"] == pytest.approx(1 / 3)
    assert saved["ap_by_pixel_area"]["large (> 96² px)"] is None  # the raster's 1 m pixels add COCO's bands


def test_bad_inputs_are_one_line(tmp_path):
    with pytest.raises(UserError, match="score_field='confidence' is missing") as err:
        scene(SPLIT, score_field="confidence")
    assert "score" in str(err.value) and len(str(err.value)) <= 200
    (tmp_path / "bad.gpkg").write_text("not a geopackage")
    with pytest.raises(UserError, match="cannot read labels bad.gpkg"):
        evaluate_scene(features_of(SPLIT, label="object"), tmp_path / "bad.gpkg")


def test_utm_zone_when_both_sides_are_geographic():
    lonlat = np.array([box(15.1, 45.1, 15.2, 45.2)], dtype=object)  # 15 E, 45 N: zone 33 north
    assert evaluation_crs(CRS.from_epsg(4326), CRS.from_epsg(4326), lonlat).to_epsg() == 32633
    south = np.array([box(-70.1, -33.5, -70.0, -33.4)], dtype=object)  # Santiago: zone 19 south
    assert evaluation_crs(CRS.from_epsg(4326), CRS.from_epsg(4326), south).to_epsg() == 32719
    assert evaluation_crs(None, None, lonlat) is None


# ------------------------------------------------------------------------------------------ the hotcoco cross-check
SIZE = 128


def octagon(cx, cy, r):
    s = r // 2
    return Polygon([(cx + dx, cy + dy) for dx, dy in ((r, s), (s, r), (-s, r), (-r, s), (-r, -s), (-s, -r), (s, -r),
                                                       (r, -s))])


def cross_check_scene():
    """Two classes in pixel coordinates: exact hits, shifted hits (IoUs spread between the thresholds), misses,
    false positives and a duplicate; scores all distinct."""
    truths = [(box(4, 4, 24, 20), 1), (box(40, 6, 70, 26), 1), (box(80, 80, 120, 100), 1), (octagon(30, 60, 10), 2),
              (octagon(70, 60, 12), 2), (box(100, 10, 124, 40), 2), (box(6, 100, 20, 124), 1)]
    preds = [(box(4, 4, 24, 20), 1, 0.97), (box(42, 6, 70, 26), 1, 0.91), (box(86, 80, 120, 100), 1, 0.55),
             (octagon(31, 61, 10), 2, 0.88), (octagon(74, 60, 12), 2, 0.62), (box(100, 24, 124, 40), 2, 0.83),
             (box(41, 7, 70, 26), 1, 0.74), (box(60, 100, 80, 120), 1, 0.66), (box(90, 50, 100, 60), 2, 0.45),
             (box(100, 10, 124, 22), 2, 0.38)]
    return truths, preds


def rasterised(geometry):
    mask = features.rasterize([(geometry, 1)], out_shape=(SIZE, SIZE), fill=0, dtype="uint8")
    rle = mask_utils.encode(np.asfortranarray(mask))
    return {"size": rle["size"], "counts": rle["counts"].decode("ascii")}, int(mask.sum())


def test_ap_equals_hotcoco_on_rasterised_masks():
    hotcoco = pytest.importorskip("hotcoco")
    truths, preds = cross_check_scene()
    thresholds = np.linspace(0.5, 0.95, 10)
    for g, gc in truths:  # the premise: rasterising moves no IoU across a threshold
        for p, pc, _ in preds:
            if gc == pc and g.intersects(p):
                exact = g.intersection(p).area / g.union(p).area
                a, b = (features.rasterize([(x, 1)], out_shape=(SIZE, SIZE)).astype(bool) for x in (g, p))
                pixels = (a & b).sum() / (a | b).sum()
                assert (np.asarray(exact) >= thresholds).tolist() == (pixels >= thresholds).tolist()
    annotations = []
    for k, (g, cls) in enumerate(truths):
        rle, area = rasterised(g)
        annotations.append({"id": k + 1, "image_id": 1, "category_id": cls, "segmentation": rle, "area": area,
                            "bbox": list(mask_utils.toBbox(rle)), "iscrowd": 0})
    gt = hotcoco.COCO({"images": [{"id": 1, "width": SIZE, "height": SIZE}], "annotations": annotations,
                       "categories": [{"id": 1, "name": "1"}, {"id": 2, "name": "2"}]})
    results = [{"image_id": 1, "category_id": cls, "segmentation": rasterised(p)[0], "score": s} for p, cls, s in preds]
    evaluator = hotcoco.COCOeval(gt, gt.loadRes(results), "segm")
    params = evaluator.params
    params.maxDets, params.areaRng, params.areaRngLbl = [10_000], [[0.0, 1e10]], ["all"]
    evaluator.params = params
    evaluator.evaluate()
    evaluator.accumulate()
    precision = np.asarray(evaluator.eval["precision"])[:, :, :, 0, 0]  # (iou, recall, class)

    def coco(values):
        return float(values[values > -1].mean())

    mine = evaluate_scene([{"geometry": p, "properties": {"score": s, "label": str(c)}} for p, c, s in preds],
                          [{"geometry": g, "properties": {"label": str(c)}} for g, c in truths], pixel_size=1.0)
    assert mine.crs is None
    assert mine.ap == pytest.approx(coco(precision), abs=1e-3)
    assert mine.ap50 == pytest.approx(coco(precision[0]), abs=1e-3)
    assert mine.ap75 == pytest.approx(coco(precision[5]), abs=1e-3)
    assert 0.2 < mine.ap < 0.9  # a scene with something to get right and something to get wrong


# No-data: the raster holds data on x < 120 m only. T1 is found by P1; T2 lies in no-data (ignored, not a miss);
# T3 is exactly half inside (kept) and its prediction P3 only 8 / 18 inside (ignored): T3 is a miss. P2 lies in
# no-data: ignored, not a false positive. Without the valid area: P1-T1 and P3-T3 (IoU 180 / 200 = 0.9) match,
# P2 is a false positive and T2 a miss.
NODATA_TRUTH = [(box(10, 10, 30, 30), {}), (box(150, 10, 170, 30), {}), (box(110, 50, 130, 60), {})]
NODATA_PREDS = [(box(10, 10, 30, 30), {"score": 0.9}), (box(150, 50, 170, 70), {"score": 0.8}),
                (box(112, 50, 130, 60), {"score": 0.7})]


def nodata_scene(**kwargs):
    return evaluate_scene(features_of(NODATA_PREDS, label="object"), features_of(NODATA_TRUTH, cls="object"),
                          label_class_field="cls", crs="EPSG:32633", **kwargs)


def test_nodata_is_never_background(tmp_path):
    everything = nodata_scene()
    assert (everything.precision, everything.recall) == (pytest.approx(2 / 3), pytest.approx(2 / 3))
    assert (everything.ignored_predictions, everything.ignored_ground_truth) == (0, 0)
    valid = at(box(0, 0, 120, 100))
    for area in (valid, tmp_path / "scene.tif"):
        if not hasattr(area, "geom_type"):  # the raster itself: 200 x 100 one-metre pixels, x >= 120 m no-data
            data = np.full((1, 100, 200), 7, np.uint8)
            data[:, :, 120:] = 0
            with rasterio.open(area, "w", driver="GTiff", width=200, height=100, count=1, dtype="uint8", crs=UTM,
                               transform=from_origin(X0, Y0 + 100, 1.0, 1.0), nodata=0) as dst:
                dst.write(data)
        report = nodata_scene(valid_area=area)
        assert (report.predictions, report.ground_truth) == (1, 2)
        assert (report.ignored_predictions, report.ignored_ground_truth) == (2, 1)
        assert (report.precision, report.recall, report.duplicates) == (1.0, 0.5, 0)
        assert "| ignored in no-data (predictions / ground truth) | 2 / 1 |" in report.to_markdown()
    # a geometry in another CRS: the valid area (half a metre wider, clear of the 50 % bounds) in lon/lat
    lonlat = reproject(np.array([at(box(0, 0, 120.5, 100))], dtype=object), UTM, "EPSG:4326")[0]
    assert nodata_scene(valid_area=lonlat, valid_area_crs="EPSG:4326").recall == 0.5
    # the CLI twin: --valid_area RASTER
    from pyogrio.raw import write

    for name, items, field in (("pred.gpkg", NODATA_PREDS, "score"), ("labels.gpkg", NODATA_TRUTH, None)):
        columns = [np.array([p["score"] for _, p in items])] if field else [np.array(["object"] * 3, dtype=object)]
        write(str(tmp_path / name), np.array([at(g).wkb for g, _ in items], dtype=object), columns,
              fields=[field or "label"], driver="GPKG", geometry_type="Polygon", crs="EPSG:32633")
    assert main(["evaluate_scene", "--pred", str(tmp_path / "pred.gpkg"), "--labels", str(tmp_path / "labels.gpkg"),
                 "--class_field", "", "--valid_area", str(tmp_path / "scene.tif"),
                 "--json", str(tmp_path / "report.json")]) == 0
    saved = json.loads((tmp_path / "report.json").read_text())
    assert (saved["precision"], saved["recall"], saved["ignored_predictions"]) == (1.0, 0.5, 2)


def test_exported_as_tl_evaluate_scene():
    assert tl.evaluate_scene is evaluate_scene
