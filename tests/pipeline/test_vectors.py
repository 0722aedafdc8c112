"""Masks -> polygons -> GeoJSON / GeoPackage / COG, and the raster edge cases of the GeoTIFF path.

Polygons must give the masks back when rasterised (IoU >= 0.99), be valid, and land in the right place in every
CRS; inputs are never written to.
"""
import json
import os
import stat
from types import SimpleNamespace

import cv2
import numpy as np
import pytest
import rasterio
import shapely
from affine import Affine
from rasterio import features
from rasterio.crs import CRS
from rasterio.transform import from_origin
from shapely.geometry import shape

from tutorial_lib.errors import UserError
from tutorial_lib.pipeline.geo import RasterReader, open_raster, predict_geotiff
from tutorial_lib.pipeline.options import SliceOptions
from tutorial_lib.pipeline.vectors import VectorFileWriter, mask_to_polygons, polygon_to_mask


def iou(a, b):
    return np.logical_and(a, b).sum() / max(1, np.logical_or(a, b).sum())


def shapes_mask(seed, size=120):
    """Random blobs with holes, thin lines, corner-touching pixels and single pixels."""
    rng = np.random.default_rng(seed)
    mask = np.zeros((size, size), np.uint8)
    q = size // 4
    for qx, qy in ((q, q), (3 * q, q), (q, 3 * q), (3 * q, 3 * q)):  # one disc per quadrant, jittered
        cx, cy = qx + int(rng.integers(-4, 5)), qy + int(rng.integers(-4, 5))
        r = int(rng.integers(8, q - 6))
        cv2.circle(mask, (cx, cy), r, 1, -1)
        cv2.circle(mask, (cx, cy), r // 3, 0, -1)  # a hole
    cv2.line(mask, (0, 0), (size - 1, size // 2), 1, 1)  # a 1-px diagonal: pixels touching at corners only
    mask[rng.integers(0, size, 30), rng.integers(0, size, 30)] = 1
    return mask.astype(bool)


@pytest.mark.parametrize("seed", range(4))
def test_polygons_rasterise_back_to_the_mask(seed):
    mask = shapes_mask(seed)
    geometry = mask_to_polygons(mask, offset=(40, 7))
    assert geometry.is_valid and geometry.geom_type in ("Polygon", "MultiPolygon")
    assert geometry.area == mask.sum()  # pixel edges: each pixel is a unit square
    back = polygon_to_mask(geometry, mask.shape, offset=(40, 7))
    assert iou(back, mask) >= 0.99 and np.array_equal(back, mask)
    holes = sum(len(p.interiors) for p in getattr(geometry, "geoms", [geometry]))
    assert holes >= 4  # every disc keeps its hole


def test_checkerboard_and_empty_masks():
    board = (np.indices((20, 20)).sum(0) % 2).astype(bool)  # every pixel touches its neighbours at corners only
    geometry = mask_to_polygons(board)
    assert geometry.is_valid and geometry.area == board.sum()
    assert np.array_equal(polygon_to_mask(geometry, board.shape), board)
    assert mask_to_polygons(np.zeros((5, 5), bool)).is_empty and mask_to_polygons(np.zeros((0, 0), bool)).is_empty


def test_simplification_keeps_topology_and_validity():
    mask = shapes_mask(7, size=200)
    exact = mask_to_polygons(mask)
    simple = mask_to_polygons(mask, simplify_tolerance=1.5)
    count = lambda g: len(shapely.get_coordinates(g))  # noqa: E731
    assert simple.is_valid and count(simple) < 0.7 * count(exact)
    assert sum(len(p.interiors) for p in simple.geoms) == sum(len(p.interiors) for p in exact.geoms)
    assert iou(polygon_to_mask(simple, mask.shape), mask) > 0.9


def test_transform_maps_pixels_to_the_map():
    mask = shapes_mask(1)
    rotated = from_origin(300000, 5000000, 2.0, 2.0) @ Affine.rotation(20)
    geometry = mask_to_polygons(mask, (3, 4), transform=rotated)
    assert geometry.is_valid and geometry.area == pytest.approx(mask.sum() * 4.0)
    assert np.array_equal(polygon_to_mask(geometry, mask.shape, (3, 4), transform=rotated), mask)


# ------------------------------------------------------------------------------------------------ GeoTIFF cases
OBJECTS = [(30, 40, 14), (150, 60, 20), (90, 150, 26), (200, 190, 12)]  # (x, y, radius): discs


def truth(height=240, width=260):
    masks = []
    for x, y, r in OBJECTS:
        m = np.zeros((height, width), np.uint8)
        cv2.circle(m, (x, y), r, 1, -1)
        masks.append(m.astype(bool))
    return masks


def bright_detector(tile):
    """Connected components of bright pixels (> 127 in band 1)."""
    n, labels = cv2.connectedComponents((tile[..., 0] > 127).astype(np.uint8))
    masks = [labels == k for k in range(1, n)]
    return SimpleNamespace(boxes=[{"cls_id": 0, "label": "disc", "score": 0.9}] * len(masks),
                           masks=np.array(masks, bool).reshape(-1, *tile.shape[:2]))


def write_raster(path, data, **profile):
    data = data if data.ndim == 3 else data[None]
    with rasterio.open(path, "w", driver="GTiff", height=data.shape[1], width=data.shape[2], count=data.shape[0],
                       dtype=data.dtype, **profile) as dst:
        dst.write(data)
    return path


def check_outputs(tmp_path, name, transform, crs_check=None):
    """Rasterising the GeoPackage polygons (native CRS) gives back the discs; the GeoJSON is valid lon/lat."""
    from pyogrio.raw import read

    meta, _, geometry, fields = read(tmp_path / f"{name}.gpkg")
    polygons = [shapely.from_wkb(g) for g in geometry]
    assert len(polygons) == len(OBJECTS) and all(p.is_valid for p in polygons)
    if crs_check:
        crs_check(CRS.from_user_input(meta["crs"]))
    masks = truth()
    for poly in polygons:
        back = features.rasterize([(poly, 1)], out_shape=masks[0].shape, transform=transform).astype(bool)
        assert max(iou(back, m) for m in masks) >= 0.99
    collection = json.loads((tmp_path / f"{name}.geojson").read_text())
    assert "crs" not in collection and len(collection["features"]) == len(OBJECTS)
    for f in collection["features"]:
        g = shape(f["geometry"])
        assert g.is_valid and -180 <= g.centroid.x <= 180 and -90 <= g.centroid.y <= 90
        ring = f["geometry"]["coordinates"][0] if f["geometry"]["type"] == "Polygon" \
            else f["geometry"]["coordinates"][0][0]
        assert shapely.LinearRing(ring).is_ccw  # RFC 7946 right-hand rule
    areas = [f["properties"]["area_m2"] for f in collection["features"]]
    return polygons, areas


def run(tmp_path, src, name, **kwargs):
    return predict_geotiff(bright_detector, src, tmp_path / f"{name}.geojson", slicing=SliceOptions(128, 0.25),
                           vector_path=tmp_path / f"{name}.gpkg", progress=False, **kwargs)


def discs(value=200, dtype=np.uint8, background=20):
    image = np.full((240, 260), background, dtype)
    for m in truth():
        image[m] = value
    return image


def test_uint16_single_band_with_nodata_is_stretched(tmp_path):
    image = discs(value=3000, dtype=np.uint16, background=800)
    image[:, :12] = 0  # a nodata strip and corner (no object there)
    image[220:, 230:] = 0
    src = write_raster(tmp_path / "u16.tif", image, crs="EPSG:32631", transform=from_origin(4e5, 5e6, 10, 10),
                       nodata=0)
    with open_raster(src) as ds:
        reader = RasterReader(ds)
        tile = reader.read(0, 0, 260, 240)
        valid = reader.valid(0, 0, 260, 240)
    assert tile.dtype == np.uint8 and tile.shape == (240, 260, 3)
    assert tile[100, 100, 0] < 60 and tile[60, 150, 0] > 200  # 2-98 % stretch: background dark, discs bright
    assert not valid[:, :12].any() and not valid[220:, 230:].any() and valid[:, 12:230].all()
    assert (tile[~valid] == 0).all()
    summary = run(tmp_path, src, "u16", instance_path=tmp_path / "u16_ids.tif")
    assert summary["instances"] == len(OBJECTS)
    _, areas = check_outputs(tmp_path, "u16", from_origin(4e5, 5e6, 10, 10))
    assert sorted(areas) == sorted(m.sum() * 100.0 for m in truth())  # 10 m pixels, UTM metres
    with rasterio.open(tmp_path / "u16_ids.tif") as ids:
        assert ids.dtypes[0] == "uint32" and ids.crs.to_epsg() == 32631


def test_all_nodata_tiles_are_not_predicted(tmp_path):
    image = discs()
    image[:, 130:] = 0
    src = write_raster(tmp_path / "half.tif", image, crs="EPSG:32631", transform=from_origin(4e5, 5e6, 1, 1),
                       nodata=0)
    summary = predict_geotiff(bright_detector, src, tmp_path / "half.geojson", slicing=SliceOptions(64, 0.0),
                              progress=False)
    assert summary["tiles_predicted"] < summary["tiles"]


def test_rotated_transform_and_crs_without_epsg_code(tmp_path):
    custom = CRS.from_wkt(CRS.from_proj4("+proj=laea +lat_0=52 +lon_0=10 +x_0=4321000 +y_0=3210000 +ellps=GRS80 "
                                         "+units=m +no_defs").to_wkt())
    assert custom.to_epsg() is None
    rotated = from_origin(4321000, 3210000, 2.0, 2.0) @ Affine.rotation(30)
    src = write_raster(tmp_path / "rot.tif", np.stack([discs()] * 3), crs=custom, transform=rotated)
    summary = run(tmp_path, src, "rot", mask_path=tmp_path / "rot_mask.tif")
    assert summary["instances"] == len(OBJECTS)
    polygons, areas = check_outputs(tmp_path, "rot", rotated, lambda crs: (crs.to_epsg() is None and crs.is_projected))
    assert sorted(areas) == pytest.approx(sorted(m.sum() * 4.0 for m in truth()), rel=1e-6)
    # lon/lat near the LAEA origin (10 E, 52 N)
    lon_lat = [shape(f["geometry"]).centroid for f in
               json.loads((tmp_path / "rot.geojson").read_text())["features"]]
    assert all(abs(c.x - 10) < 0.1 and abs(c.y - 52) < 0.1 for c in lon_lat)
    with rasterio.open(tmp_path / "rot_mask.tif") as mask:
        assert mask.transform.almost_equals(rotated) and mask.crs.is_projected and mask.crs.to_epsg() is None


def test_geographic_crs_area_in_square_metres(tmp_path):
    transform = from_origin(10.0, 52.0, 1e-4, 1e-4)  # ~6.9 m x 11.1 m pixels at 52 N
    src = write_raster(tmp_path / "geo.tif", np.stack([discs()] * 3), crs="EPSG:4326", transform=transform)
    run(tmp_path, src, "geo")
    _, areas = check_outputs(tmp_path, "geo", transform)
    pixel_m2 = (1e-4 * 111320 * np.cos(np.radians(52 - 0.012))) * (1e-4 * 111250)
    assert sorted(areas) == pytest.approx(sorted(m.sum() * pixel_m2 for m in truth()), rel=0.01)


@pytest.mark.parametrize("read_only", [True, False])
def test_input_folder_is_never_written(tmp_path, read_only):
    """GDAL would write ``scene.tif.aux.xml`` (statistics) beside the input with PAM on: nothing may appear,
    in a read-only folder (no error either) or a writable one."""
    folder = tmp_path / "in"
    folder.mkdir()
    src = write_raster(folder / "scene.tif", discs(value=3000, dtype=np.uint16), crs="EPSG:32631",
                       transform=from_origin(4e5, 5e6, 10, 10))
    before = {p.name: p.stat().st_mtime_ns for p in folder.iterdir()}
    if read_only:
        os.chmod(src, stat.S_IRUSR)
        os.chmod(folder, stat.S_IRUSR | stat.S_IXUSR)
    try:
        run(tmp_path, src, "ro", mask_path=tmp_path / "ro_mask.tif")  # statistics for the stretch
        with open_raster(src) as ds:
            ds.stats()  # even an explicit statistics call stays in memory
    finally:
        os.chmod(folder, stat.S_IRWXU)
        os.chmod(src, stat.S_IRUSR | stat.S_IWUSR)
    assert {p.name: p.stat().st_mtime_ns for p in folder.iterdir()} == before
    assert len(json.loads((tmp_path / "ro.geojson").read_text())["features"]) == len(OBJECTS)


def test_unreadable_inputs_and_outputs_are_user_errors(tmp_path):
    (tmp_path / "bad.tif").write_bytes(b"not a tiff")
    with pytest.raises(UserError, match="cannot open raster"):
        predict_geotiff(bright_detector, tmp_path / "bad.tif", tmp_path / "x.geojson", progress=False)
    with pytest.raises(UserError, match="gpkg"):
        VectorFileWriter(tmp_path / "out.shp")
    src = write_raster(tmp_path / "empty.tif", np.zeros((64, 64), np.uint16), crs="EPSG:32631",
                       transform=from_origin(4e5, 5e6, 10, 10), nodata=0)
    with pytest.raises(UserError, match="only nodata"):
        predict_geotiff(bright_detector, src, tmp_path / "x.geojson", progress=False)
    assert not (tmp_path / "x.geojson").exists()
