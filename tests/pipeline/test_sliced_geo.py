"""Sliced inference and GeoTIFF -> GeoJSON, with a colour-threshold detector standing in for the model.

The detector is exact (it finds every red or green blob in a tile), so these tests pin down the tiling,
merging and georeferencing arithmetic itself: every object must come out once, whole, at its map position.
"""
import json
from types import SimpleNamespace

import cv2
import numpy as np
import pytest
import rasterio
from rasterio.transform import from_origin
from rasterio.warp import transform as warp_transform
from shapely.geometry import shape

from tutorial_lib.errors import UserError
from tutorial_lib.pipeline.geo import predict_geotiff
from tutorial_lib.pipeline.options import MergeOptions, SliceOptions
from tutorial_lib.pipeline.sliced import SlicedInference, sliced_predict, tile_grid

# (class, kind, x, y, size): red discs = class 0, green squares = class 1; several straddle tile borders
OBJECTS = [(0, "disc", 190, 200, 40), (0, "disc", 600, 120, 25), (1, "square", 380, 380, 70),
           (1, "square", 700, 560, 50), (0, "disc", 96, 560, 30), (1, "square", 195, 195 + 300, 36)]
LABELS = ("red", "green")


def scene(height=720, width=900):
    image = np.full((height, width, 3), 60, np.uint8)
    truth = []
    for cls, kind, x, y, size in OBJECTS:
        mask = np.zeros((height, width), np.uint8)
        if kind == "disc":
            cv2.circle(mask, (x, y), size, 1, -1)
        else:
            cv2.rectangle(mask, (x - size // 2, y - size // 2), (x + size // 2, y + size // 2), 1, -1)
        image[mask.astype(bool)] = (230, 40, 40) if cls == 0 else (40, 230, 40)
        truth.append((cls, mask.astype(bool)))
    return image, truth


def detector(tile):
    """Connected components of red (class 0) and green (class 1) pixels."""
    boxes, masks = [], []
    for cls, channel in ((0, 0), (1, 1)):
        binary = (tile[..., channel] > 150) & (tile[..., 1 - channel] < 100)
        n, labels = cv2.connectedComponents(binary.astype(np.uint8))
        for k in range(1, n):
            masks.append(labels == k)
            boxes.append({"cls_id": cls, "label": LABELS[cls], "score": 0.9 - 0.01 * len(boxes)})
    return SimpleNamespace(boxes=boxes, masks=np.array(masks).reshape(-1, *tile.shape[:2]))


def iou(a, b):
    return np.logical_and(a, b).sum() / np.logical_or(a, b).sum()


def test_tile_grid_covers_scene_with_overlap():
    tiles = tile_grid(720, 900, 256, 0.25)
    covered = np.zeros((720, 900), int)
    for x0, y0, x1, y1 in tiles:
        assert x1 - x0 == 256 and y1 - y0 == 256
        covered[y0:y1, x0:x1] += 1
    assert covered.min() >= 1 and covered.max() >= 2
    assert tile_grid(100, 80, 256, 0.2) == [(0, 0, 80, 100)]
    with pytest.raises(UserError):
        tile_grid(100, 100, 256, 1.0)


@pytest.mark.parametrize("slice_size, overlap", [(256, 0.25), (200, 0.5), (128, 0.3)])
def test_objects_cut_by_tile_borders_come_out_once_and_whole(slice_size, overlap):
    image, truth = scene()
    instances = sliced_predict(image, detector, SliceOptions(slice_size, overlap), progress=False)
    assert len(instances) == len(truth)
    masks = instances.full_masks()
    for cls, gt in truth:
        best = max(range(len(instances)), key=lambda k: iou(masks[k], gt))
        assert instances.class_ids[best] == cls and iou(masks[best], gt) > 0.99


def test_sliced_equals_whole_image_prediction():
    image, _ = scene()
    whole = detector(image)
    sliced = sliced_predict(image, detector, SliceOptions(256, 0.25), progress=False)
    masks = sliced.full_masks()
    for ref in whole.masks:
        assert max(iou(ref, m) for m in masks) > 0.99


@pytest.fixture()
def geotiff(tmp_path):
    image, truth = scene()
    transform = from_origin(500000.0, 4600000.0, 0.5, 0.5)  # UTM 33N, 0.5 m pixels
    path = tmp_path / "scene.tif"
    with rasterio.open(path, "w", driver="GTiff", height=image.shape[0], width=image.shape[1], count=3,
                       dtype="uint8", crs="EPSG:32633", transform=transform) as dst:
        dst.write(np.transpose(image, (2, 0, 1)))
    return path, transform, truth


def read_vectors(path):
    """Features of a GeoPackage / FlatGeobuf as (shapely geometry, properties dict), and the layer's CRS."""
    import shapely
    from pyogrio.raw import read

    meta, _, geometry, fields = read(path)
    rows = [dict(zip(meta["fields"], values)) for values in zip(*fields)]
    return [(shapely.from_wkb(g), row) for g, row in zip(geometry, rows)], meta["crs"]


def test_geotiff_polygons_land_at_map_coordinates(geotiff, tmp_path):
    path, transform, truth = geotiff
    summary = predict_geotiff(detector, path, tmp_path / "out.geojson", slicing=SliceOptions(256, 0.25),
                              mask_path=tmp_path / "mask.tif", vector_path=tmp_path / "out.gpkg",
                              instance_path=tmp_path / "instances.tif", progress=False)
    collection = json.loads((tmp_path / "out.geojson").read_text())
    assert summary["instances"] == len(truth) == len(collection["features"])
    assert "crs" not in collection  # RFC 7946: WGS 84 lon/lat; the native CRS lives in the GeoPackage
    features, crs = read_vectors(tmp_path / "out.gpkg")
    assert len(features) == len(truth) and rasterio.crs.CRS.from_user_input(crs).to_epsg() == 32633
    for (cls, kind, x, y, size), (_, gt) in zip(OBJECTS, truth):
        map_x, map_y = transform @ (x + 0.5, y + 0.5)
        geometry, props = min(features, key=lambda f: f[0].centroid.distance(shape({"type": "Point",
                                                                                  "coordinates": [map_x, map_y]})))
        assert props["class_id"] == cls and props["label"] == LABELS[cls]
        assert abs(geometry.centroid.x - map_x) < 0.5 and abs(geometry.centroid.y - map_y) < 0.5
        assert geometry.area == pytest.approx(gt.sum() * 0.25, rel=0.01)  # 0.5 m x 0.5 m pixels
        assert props["area_m2"] == pytest.approx(geometry.area, rel=1e-6) and props["pixel_area"] == gt.sum()
        lon_lat = [f for f in collection["features"] if f["id"] == props["instance_id"]][0]
        assert lon_lat["properties"]["area_m2"] == props["area_m2"]
        lon, lat = warp_transform("EPSG:32633", "EPSG:4326", [map_x], [map_y])
        centroid = shape(lon_lat["geometry"]).centroid
        assert abs(centroid.x - lon[0]) < 1e-5 and abs(centroid.y - lat[0]) < 1e-5
    with rasterio.open(tmp_path / "mask.tif") as mask:
        assert mask.crs.to_epsg() == 32633 and mask.transform == transform
        classes = mask.read(1)
    for cls in (0, 1):
        expected = sum(gt.sum() for c, gt in truth if c == cls)
        assert (classes == cls + 1).sum() == expected
    with rasterio.open(tmp_path / "instances.tif") as ids:
        assert ids.crs.to_epsg() == 32633 and ids.transform == transform
        assert ids.tags(ns="IMAGE_STRUCTURE").get("LAYOUT") == "COG"
        ids = ids.read(1)
    for geometry, props in features:  # each instance id paints exactly its own polygon's pixels
        assert (ids == props["instance_id"]).sum() == props["pixel_area"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["instances.tif", "mask.tif", "out.geojson", "out.gpkg",
                                                          "scene.tif"]  # no temporaries, nothing beside the input


def test_geojson_in_epsg4326(geotiff, tmp_path):
    path, transform, truth = geotiff
    predict_geotiff(detector, path, tmp_path / "wgs84.geojson", slicing=SliceOptions(256), to_epsg4326=True,
                    progress=False)
    collection = json.loads((tmp_path / "wgs84.geojson").read_text())
    assert "crs" not in collection  # RFC 7946: WGS 84 is implied
    cls, kind, x, y, size = OBJECTS[2]
    lon, lat = warp_transform("EPSG:32633", "EPSG:4326", *[[v] for v in transform @ (x + 0.5, y + 0.5)])
    centroids = [shape(f["geometry"]).centroid for f in collection["features"]]
    assert min(abs(c.x - lon[0]) + abs(c.y - lat[0]) for c in centroids) < 1e-5
    assert all(14 < c.x < 16 and 41 < c.y < 42 for c in centroids)


def test_plain_image_gives_pixel_coordinates(tmp_path):
    image, truth = scene()
    png = tmp_path / "scene.png"
    cv2.imwrite(str(png), image[..., ::-1])
    summary = predict_geotiff(detector, png, tmp_path / "px.geojson", slicing=SliceOptions(300), progress=False)
    collection = json.loads((tmp_path / "px.geojson").read_text())
    assert summary["crs"] is None and "crs" not in collection
    cls, kind, x, y, size = OBJECTS[2]
    centroid = min((shape(f["geometry"]).centroid for f in collection["features"]),
                   key=lambda c: abs(c.x - x) + abs(c.y - y))
    assert abs(centroid.x - (x + 0.5)) < 0.5 and abs(centroid.y - (y + 0.5)) < 0.5
    with pytest.raises(UserError, match="no georeferencing"):
        predict_geotiff(detector, png, tmp_path / "x.geojson", to_epsg4326=True, progress=False)


# ---------------------------------------------------------------------------------------------------- the options
def test_options_keep_the_defaults_and_normalise_once():
    assert SliceOptions() == SliceOptions(slice_size=512, overlap_ratio=0.2, full_image=False, batch_size=None)
    assert MergeOptions() == MergeOptions("GREEDYNMM", "IOU", "masks", 0.5)
    merging = MergeOptions(merge_mode="nms", match_metric="ios", match_on="Boxes", match_threshold="0.3")
    assert (merging.merge_mode, merging.match_metric, merging.match_on, merging.match_threshold) == \
        ("NMS", "IOS", "boxes", 0.3)
    slicing = SliceOptions(slice_size=256.0, overlap_ratio=0, full_image=300, batch_size=4)
    assert (slicing.slice_size, slicing.overlap_ratio, slicing.full_image, slicing.batch_size) == (256, 0.0, 300, 4)
    with pytest.raises(AttributeError):  # frozen: made once, checked once
        slicing.slice_size = 16
    assert {SliceOptions(), SliceOptions()} == {SliceOptions()}  # hashable, equal by value


def test_slice_options_resolve_tile_size_whole_scene_pass_and_batch():
    automatic = SliceOptions(slice_size=None)
    assert automatic.tile_size(900, 700) == 900 and automatic.tile_size(10, 12) == 16
    assert automatic.tile_size(3000, 100) == 1024  # over 2048 px: 1024 px tiles
    assert SliceOptions(256).tile_size(3000, 3000) == 256
    assert SliceOptions(full_image=True).whole_scene_size(256) == 256
    assert SliceOptions(full_image=300).whole_scene_size(256) == 300
    assert SliceOptions().whole_scene_size(256) == 0
    assert SliceOptions().with_batch_size(3).batch_size == 3  # None: the pipeline's
    assert SliceOptions(batch_size=2).with_batch_size(3).batch_size == 2  # given: kept


@pytest.mark.parametrize("kwargs, named", [
    ({"slice_size": 8}, "slice_size"), ({"slice_size": "big"}, "slice_size"), ({"slice_size": True}, "slice_size"),
    ({"slice_size": 100.5}, "slice_size"), ({"overlap_ratio": 1.0}, "overlap_ratio"),
    ({"overlap_ratio": -0.1}, "overlap_ratio"), ({"overlap_ratio": float("nan")}, "overlap_ratio"),
    ({"full_image": -5}, "full_image"), ({"full_image": "yes"}, "full_image"), ({"batch_size": 0}, "batch_size"),
])
def test_bad_slice_options_are_one_line_user_errors(kwargs, named):
    with pytest.raises(UserError) as error:
        SliceOptions(**kwargs)
    message = str(error.value)
    assert message.startswith(named) and "\n" not in message and len(message) <= 200
    assert repr(next(iter(kwargs.values())))[:4] in message or str(next(iter(kwargs.values()))) in message


@pytest.mark.parametrize("kwargs, allowed", [
    ({"merge_mode": "WBF"}, "GREEDYNMM, NMM, NMS"), ({"match_metric": "DICE"}, "IOU, IOS"),
    ({"match_on": "pixels"}, "masks, boxes"), ({"match_threshold": 1.5}, "[0, 1)"),
    ({"match_threshold": "high"}, "[0, 1)"),
])
def test_bad_merge_options_name_the_value_and_what_is_allowed(kwargs, allowed):
    with pytest.raises(UserError) as error:
        MergeOptions(**kwargs)
    message = str(error.value)
    name, value = next(iter(kwargs.items()))
    assert message.startswith(name) and allowed in message and repr(value) in message
    assert "\n" not in message and len(message) <= 200


def test_options_travel_to_sliced_inference():
    image, truth = scene()
    calls = []

    def batched(tiles):
        calls.append(len(tiles))
        return [detector(t) for t in tiles]

    instances = sliced_predict(image, batched, SliceOptions(300, 0.25, batch_size=3), MergeOptions("NMM"),
                               progress=False)
    assert len(instances) == len(truth) and max(calls) == 3  # tiles grouped by the option's batch size
    run = SlicedInference(image, detector, SliceOptions(300, 0.25, full_image=True),
                          MergeOptions("NMS", "IOS", "boxes", 0.3), progress=False)
    assert (run.slice_size, run.batch_size, run.full_image) == (300, 1, 300)
    assert (run.merger.mode, run.merger.metric, run.merger.on, run.merger.threshold) == ("NMS", "IOS", "boxes", 0.3)
    assert run.tiles == tile_grid(720, 900, 300, 0.25)
    automatic = SlicedInference(image, detector, SliceOptions(slice_size=None), progress=False)
    assert automatic.tiles == [(0, 0, 900, 720)]  # up to 2048 px: one tile
