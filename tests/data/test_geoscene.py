"""The generated georeferenced scene (``tutorial_lib.data.geoscene``) and the oracle tile predictor over it: same seed,
same bytes; a 4-band uint16 UTM GeoTIFF with a no-data collar; lon/lat labels on its valid pixels; chips that pass
check_dataset; and the oracle through the real sliced-inference path scoring as the ground truth should."""
import json

import numpy as np
import pytest
import rasterio
import shapely
from rasterio import features
from shapely.geometry import shape

import tutorial_lib as tl
from tutorial_lib.cli import main
from tutorial_lib.data.categories import NWPU_CLASSES
from tutorial_lib.data.check import check_report
from tutorial_lib.data.geovector import reproject
from tutorial_lib.errors import UserError
from tutorial_lib.pipeline.geo import predict_geotiff
from tutorial_lib.pipeline.oracle import OracleTilePredictor
from tutorial_lib.pipeline.scene_eval import TileGrid, evaluate_scene

SIZE = 1024


@pytest.fixture(scope="module")
def scenes(tmp_path_factory):
    """The same small scene made twice, in two folders."""
    root = tmp_path_factory.mktemp("geoscene")
    return [tl.make_geoscene(root / name, size=SIZE) for name in ("a", "b")]


def labels_on_pixels(scene):
    """The labels' classes and polygons moved to the raster's pixel grid, and the raster's valid-pixel mask."""
    collection = json.loads(scene.labels.read_text(encoding="utf-8"))
    with rasterio.open(scene.raster) as ds:
        lonlat = [shape(f["geometry"]) for f in collection["features"]]
        inverse = ~ds.transform
        pixels = shapely.transform(reproject(lonlat, "EPSG:4326", ds.crs),
                                   lambda xy: np.column_stack(inverse @ (xy[:, 0], xy[:, 1])))
        valid = ds.read_masks(1) > 0
    return collection, lonlat, pixels, valid


def test_the_same_seed_gives_identical_files_and_is_reused(scenes):
    a, b = scenes
    assert a.raster.read_bytes() == b.raster.read_bytes()
    assert a.labels.read_bytes() == b.labels.read_bytes()
    assert (a.counts, a.seam_crossing) == (b.counts, b.seam_crossing) and a.objects >= 60
    stamp = a.raster.stat().st_mtime_ns
    again = tl.make_geoscene(a.raster.parent, size=SIZE)
    assert again.reused and again.counts == a.counts and a.raster.stat().st_mtime_ns == stamp


def test_a_four_band_uint16_utm_raster_with_a_nodata_collar(scenes):
    with rasterio.open(scenes[0].raster) as ds:
        assert (ds.count, set(ds.dtypes), ds.nodata) == (4, {"uint16"}, 0)
        assert ds.crs.to_epsg() == 32650 and ds.transform.a == pytest.approx(0.4) and ds.transform.e == -ds.transform.a
        assert ds.descriptions == ("red", "green", "blue", "nir") and ds.overviews(1) == [2, 4]
        assert ds.profile["tiled"] and ds.profile["compress"] == "deflate"
        data = ds.read()
    empty = data == 0
    assert (empty == empty[0]).all()  # no-data in every band at once, never a valid value of 0
    collar = empty[0]
    assert collar[:, 0].all() and collar[-1, 0] and not collar[0, -1] and not collar[SIZE // 2, SIZE // 2]
    assert 0.01 < collar.mean() < 0.15
    valid = data[:, ~collar]
    assert valid.min() >= 1 and valid.max() < 4096  # a 12-bit range


def test_labels_are_lonlat_classes_on_valid_pixels(scenes):
    collection, lonlat, pixels, valid = labels_on_pixels(scenes[0])
    assert "crs" not in collection  # RFC 7946: longitude / latitude, no crs member
    lon0, lat0, lon1, lat1 = shapely.total_bounds(np.array(lonlat, dtype=object))
    assert 117.5 < lon0 < lon1 < 118.0 and 38.8 < lat0 < lat1 < 39.2  # UTM 50 N, the coast at Tianjin
    classes = [f["properties"]["class"] for f in collection["features"]]
    assert set(classes) <= set(NWPU_CLASSES) and len(set(classes)) >= 4
    assert {name: classes.count(name) for name in NWPU_CLASSES} == scenes[0].counts
    covered = features.rasterize([(g, 1) for g in pixels], out_shape=valid.shape, dtype="uint8").astype(bool)
    assert covered.sum() > 0.01 * covered.size and not (covered & ~valid).any()  # every label on valid pixels


def test_chips_of_the_scene_pass_check_dataset(scenes, tmp_path):
    report = tl.chip_dataset(scenes[0].raster, scenes[0].labels, tmp_path / "chips", class_column="class",
                             chip_size=256, block_size=512)
    assert sum(report.annotations.values()) >= scenes[0].objects
    assert check_report(tmp_path / "chips", tmp_path / "check", progress=False).check_pass


def test_the_oracle_through_predict_geotiff_finds_the_ground_truth(scenes, tmp_path):
    scene = scenes[0]
    oracle = OracleTilePredictor(scene.raster, scene.labels)
    summary = predict_geotiff(oracle, scene.raster, tmp_path / "pred.geojson", progress=False, labels=oracle.classes)
    assert oracle.calls == summary["tiles_predicted"] == len(oracle.tiles)
    report = evaluate_scene(tmp_path / "pred.geojson", scene.labels, label_class_field="class",
                            tile_grid=TileGrid.from_raster(scene.raster, 512, 0.2))
    assert report.ap50 >= 0.9 and report.f1 >= 0.95 and report.duplicates == 0
    assert report.predictions == report.ground_truth == scene.objects
    assert report.seam_crossing == scene.seam_crossing and report.seam_split == 0
    with pytest.raises(ValueError, match="no tile of its grid"):
        oracle(np.zeros((512, 512, 3), np.uint8))


def test_bad_arguments_are_one_line(scenes, tmp_path):
    for kwargs, message in (({"size": 100}, "size must be"), ({"epsg": 4326}, "UTM zone"),
                            ({"style": "C-spring"}, "style must be"), ({"gsd": 5}, "gsd must be")):
        with pytest.raises(UserError, match=message):
            tl.make_geoscene(tmp_path / "bad", **kwargs)
    with pytest.raises(UserError, match="other arguments"):
        tl.make_geoscene(scenes[0].raster.parent, size=SIZE, seed=1)


def test_the_cli_command(tmp_path, capsys):
    assert main(["geoscene", "--output", str(tmp_path / "cli"), "--size", "512", "--seed", "3"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["raster"].endswith("scene.tif") and printed["objects"] == sum(printed["counts"].values()) > 0
