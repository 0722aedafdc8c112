"""GeoTIFF scenes + polygon labels -> COCO chips: the round trip back to map space, reprojection, the split by area,
no-data, band selection and stretch, check_dataset, the CLI and config routes, and every bad input's one line."""
import json

import numpy as np
import pytest
import rasterio
import shapely
from PIL import Image
from pyogrio.raw import write
from rasterio.crs import CRS
from rasterio.transform import from_origin
from shapely.geometry import Polygon, box, mapping

from tutorial_lib.cli import main
from tutorial_lib.data.check import check_report
from tutorial_lib.data.geochips import chip_dataset, is_chip_dataset, raster_settings
from tutorial_lib.data.geovector import reproject
from tutorial_lib.data.split import split_dataset
from tutorial_lib.errors import UserError

X0, Y0, PIXEL = 500000.0, 4600000.0, 0.5  # UTM 33N, 0.5 m pixels
UTM = CRS.from_epsg(32633)
SIZE = 512
TRANSFORM = from_origin(X0, Y0, PIXEL, PIXEL)
NODATA_COLUMNS = 150  # the left strip of the no-data scene


def to_map(geometry):
    t = TRANSFORM
    return shapely.affinity.affine_transform(geometry, [t.a, t.b, t.d, t.e, t.xoff, t.yoff])


def pixel_labels():
    """Rectangles (many across the 128 px chip borders) and one polygon with a hole, in scene pixels."""
    rng = np.random.default_rng(3)
    shapes = []
    for _ in range(30):
        x, y = rng.uniform(160, 480, 2)
        w, h = rng.uniform(12, 50, 2)
        shapes.append(box(x, y, x + w, y + h))
    shapes.append(box(300.5, 300.5, 370.5, 370.5).difference(box(320.5, 320.5, 340.5, 340.5)))
    return shapes, ["car" if k % 2 else "tank" for k in range(len(shapes))]


def write_raster(path, nodata=False, crs=UTM, transform=TRANSFORM):
    yy, xx = np.mgrid[0:SIZE, 0:SIZE]
    noise = np.random.default_rng(0).integers(0, 200, (4, SIZE, SIZE))
    data = np.stack([1000 * b + 3 * xx + 2 * yy for b in range(1, 5)]) + noise
    data = data.astype(np.uint16)
    profile = {"driver": "GTiff", "width": SIZE, "height": SIZE, "count": 4, "dtype": "uint16", "tiled": True,
               "blockxsize": 256, "blockysize": 256, "compress": "deflate"}
    if crs is not None:
        profile.update(crs=crs, transform=transform)
    if nodata:
        data[:, :, :NODATA_COLUMNS] = 0
        profile["nodata"] = 0
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data)
    return path


def write_labels(path, geometries, classes, crs="EPSG:32633"):
    if path.suffix == ".geojson":
        features = [{"type": "Feature", "geometry": mapping(g), "properties": {"cls": c}}
                    for g, c in zip(geometries, classes)]
        path.write_text(json.dumps({"type": "FeatureCollection", "features": features}))
        return path
    write(str(path), np.array([shapely.to_wkb(g) for g in geometries], dtype=object),
          [np.array(classes, dtype=object)], fields=["cls"], driver="GPKG", geometry_type="Unknown", crs=crs)
    return path


@pytest.fixture()
def scene(tmp_path):
    folder = tmp_path / "scene"
    folder.mkdir()
    shapes, classes = pixel_labels()
    write_raster(folder / "scene.tif")
    write_labels(folder / "labels.gpkg", [to_map(g) for g in shapes], classes)
    return folder


def coco(dataset, split):
    return json.loads((dataset / "annotations" / f"instance_{split}.json").read_text())


def chip_polygons(data):
    """Each image's annotations as map-space geometries: ``{file_name: [(category name, geometry)]}``."""
    names = {c["id"]: c["name"] for c in data["categories"]}
    out = {}
    for img in data["images"]:
        a, b, c, d, e, f = img["transform"]
        out[img["file_name"]] = []
        for ann in (x for x in data["annotations"] if x["image_id"] == img["id"]):
            pieces = [Polygon(np.reshape(ring, (-1, 2))) for ring in ann["segmentation"]]
            local = shapely.union_all(pieces)
            out[img["file_name"]].append((names[ann["category_id"]],
                                          shapely.affinity.affine_transform(local, [a, b, d, e, c, f])))
    return out


def window_box(img):
    col, row, w, h = img["window"]
    return box(X0 + col * PIXEL, Y0 - (row + h) * PIXEL, X0 + (col + w) * PIXEL, Y0 - row * PIXEL)


def test_round_trip_back_to_map_space(scene, tmp_path):
    """Labels -> chips -> COCO -> polygons in map space: the clipped input within one pixel, nothing beside inputs."""
    before = sorted(p.name for p in scene.iterdir())
    report = chip_dataset(scene / "scene.tif", scene / "labels.gpkg", tmp_path / "chips", class_column="cls",
                          chip_size=128, block_size=256, min_area_fraction=0.0)
    assert sorted(p.name for p in scene.iterdir()) == before  # no .aux.xml, no temporaries
    assert report.categories == ["car", "tank"] and report.annotations["train"] > 10
    shapes, classes = pixel_labels()
    labels = [(c, to_map(g)) for g, c in zip(shapes, classes)]
    checked = 0
    for split in ("train", "val"):
        data = coco(tmp_path / "chips", split)
        for img in data["images"]:
            frame = window_box(img)
            expected = [(c, g.intersection(frame)) for c, g in labels if g.intersection(frame).area > 0]
            got = chip_polygons(data)[img["file_name"]]
            assert len(got) == len(expected), img["file_name"]
            for name in ("car", "tank"):
                want = shapely.union_all([g for c, g in expected if c == name])
                have = shapely.union_all([g for c, g in got if c == name])
                # coordinates are stored to 0.01 px: the outlines differ by at most that along their length
                assert want.symmetric_difference(have).area <= (want.length + have.length) * 0.01 * PIXEL
                if not want.is_empty:
                    assert shapely.hausdorff_distance(want, have) <= PIXEL
            checked += len(got)
            assert img["source"] == str((scene / "scene.tif").resolve()) and img["crs"] == "EPSG:32633"
    assert checked == sum(report.annotations.values())


def test_labels_in_lon_lat_land_on_a_utm_raster(scene, tmp_path):
    shapes, classes = pixel_labels()
    lonlat = reproject([to_map(g) for g in shapes], UTM, "EPSG:4326")
    write_labels(tmp_path / "labels_4326.geojson", lonlat, classes)
    common = {"class_column": "cls", "chip_size": 128, "block_size": 256, "min_area_fraction": 0.0}
    chip_dataset(scene / "scene.tif", scene / "labels.gpkg", tmp_path / "utm", **common)
    chip_dataset(scene / "scene.tif", tmp_path / "labels_4326.geojson", tmp_path / "lonlat", **common)
    for split in ("train", "val"):
        a, b = chip_polygons(coco(tmp_path / "utm", split)), chip_polygons(coco(tmp_path / "lonlat", split))
        assert a.keys() == b.keys()
        for name in a:
            assert len(a[name]) == len(b[name])
            for (ca, ga), (cb, gb) in zip(a[name], b[name]):
                assert ca == cb and shapely.hausdorff_distance(ga, gb) < 0.05 * PIXEL


def test_the_split_is_by_area_and_disjoint(scene, tmp_path):
    report = chip_dataset(scene / "scene.tif", scene / "labels.gpkg", tmp_path / "chips", class_column="cls",
                          chip_size=128, overlap=0.25, block_size=256, val_fraction=0.25, seed=1)
    train, val = coco(tmp_path / "chips", "train"), coco(tmp_path / "chips", "val")
    assert train["images"] and val["images"] and report.dropped_overlap_chips > 0
    val_boxes = [window_box(img) for img in val["images"]]
    for img in train["images"]:
        assert all(window_box(img).intersection(v).area == 0 for v in val_boxes), img["file_name"]
    blocks = {tuple((np.array(i["window"][:2]) + np.array(i["window"][2:]) / 2) // 256) for i in val["images"]}
    assert len(blocks) == len(report.val_units) == 1  # 4 blocks x 0.25; every val chip's centre is in it
    again = chip_dataset(scene / "scene.tif", scene / "labels.gpkg", tmp_path / "again", class_column="cls",
                         chip_size=128, overlap=0.25, block_size=256, val_fraction=0.25, seed=1)
    assert again.val_units == report.val_units  # seeded


def test_split_by_raster_keeps_each_raster_whole(scene, tmp_path):
    write_raster(scene / "scene_b.tif", transform=from_origin(X0 + 1000, Y0, PIXEL, PIXEL))
    report = chip_dataset(scene, scene / "labels.gpkg", tmp_path / "chips", class_column="cls", chip_size=256,
                          split_by="raster", val_fraction=0.5)
    sources = {split: {i["source"] for i in coco(tmp_path / "chips", split)["images"]} for split in ("train", "val")}
    assert len(sources["train"]) == len(sources["val"]) == 1 and not sources["train"] & sources["val"]
    assert report.val_units in (["scene.tif"], ["scene_b.tif"]) and report.features_outside == 0


def test_no_data_chips_are_skipped_and_no_annotation_lies_in_no_data(tmp_path):
    write_raster(tmp_path / "edge.tif", nodata=True)
    shapes, classes = pixel_labels()
    shapes.append(box(130, 200, 190, 240))  # half in the no-data strip
    write_labels(tmp_path / "labels.gpkg", [to_map(g) for g in shapes], classes + ["car"])
    report = chip_dataset(tmp_path / "edge.tif", tmp_path / "labels.gpkg", tmp_path / "chips", class_column="cls",
                          chip_size=128, block_size=256, nodata_threshold=0.5, min_area_fraction=0.0)
    assert report.skipped_nodata_chips == 4  # column 0: 128 of 128 px are no-data; column 128: 22 px (kept)
    strip = box(X0, Y0 - SIZE * PIXEL, X0 + NODATA_COLUMNS * PIXEL, Y0)
    for split in ("train", "val"):
        data = coco(tmp_path / "chips", split)
        for img in data["images"]:
            col, _, w, _ = img["window"]
            assert max(0, NODATA_COLUMNS - col) / w <= 0.5
        for pieces in chip_polygons(data).values():
            assert all(g.intersection(strip).area < 1e-6 for _, g in pieces)


def test_four_band_uint16_with_band_selection(scene, tmp_path):
    chip_dataset(scene / "scene.tif", scene / "labels.gpkg", tmp_path / "chips", class_column="cls", chip_size=128,
                 block_size=256, bands=[4, 3, 2])
    data = coco(tmp_path / "chips", "train")
    stretch = data["info"]["geochips"]["stretch"]
    assert stretch["bands"] == [4, 3, 2] and stretch["percentiles"] == [2.0, 98.0]
    assert all(lo < hi for lo, hi in zip(stretch["low"], stretch["high"]))
    # what an exported model carries: bands, source dtype and {band: [low, high]}, the same in both files
    info = data["info"]["geochips"]
    assert (info["bands"], info["dtype"]) == ([4, 3, 2], "uint16") and info == coco(tmp_path / "chips", "val")["info"][
        "geochips"]
    assert info["limits"] == {str(b): [lo, hi] for b, lo, hi in zip([4, 3, 2], stretch["low"], stretch["high"])}
    settings = raster_settings(tmp_path / "chips")
    assert (settings.bands, settings.dtype) == ((4, 3, 2), "uint16")
    assert settings.stretch == {b: (lo, hi) for b, lo, hi in zip([4, 3, 2], stretch["low"], stretch["high"])}
    img = data["images"][0]
    col, row, w, h = img["window"]
    with rasterio.open(scene / "scene.tif") as src:
        raw = src.read([4, 3, 2], window=rasterio.windows.Window(col, row, w, h)).astype(np.float32)
    lo, hi = (np.array(stretch[k])[:, None, None] for k in ("low", "high"))
    expected = np.clip((raw - lo) / (hi - lo) * 255 + 0.5, 0, 255).astype(np.uint8).transpose(1, 2, 0)
    assert np.array_equal(np.asarray(Image.open(tmp_path / "chips" / "images" / img["file_name"])), expected)


def test_check_dataset_passes_and_a_random_split_is_refused(scene, tmp_path):
    chip_dataset(scene / "scene.tif", scene / "labels.gpkg", tmp_path / "chips", class_column="cls", chip_size=128,
                 block_size=256)
    assert check_report(tmp_path / "chips", tmp_path / "check", progress=False).check_pass
    assert is_chip_dataset(coco(tmp_path / "chips", "val"))
    with pytest.raises(UserError, match="re-chip with CheckDataset.convert.val_fraction") as err:
        split_dataset(tmp_path / "chips", 80, 20)
    assert len(str(err.value)) <= 200


def test_cli_chip_and_the_config_route_write_the_same_files(scene, tmp_path):
    flags = {"class_column": "cls", "chip_size": "128", "block_size": "256", "bands": "3", "seed": "7"}
    assert main(["chip", "--rasters", str(scene / "scene.tif"), "--label_files", str(scene / "labels.gpkg"),
                 "--output", str(tmp_path / "cli")] + [x for k, v in flags.items() for x in (f"--{k}", v)]) == 0
    overrides = ["Global.mode=check_dataset", f"Global.dataset_dir={scene}", f"Global.output={tmp_path / 'run'}",
                 "Global.seed=7", "CheckDataset.convert.enable=True", "CheckDataset.convert.src_dataset_type=GeoTIFF"]
    overrides += [f"CheckDataset.convert.{k}={'[3]' if k == 'bands' else v}" for k, v in flags.items() if k != "seed"]
    assert main([x for o in overrides for x in ("-o", o)]) == 0
    config = tmp_path / "run" / "converted_dataset"
    for split in ("train", "val"):
        assert coco(tmp_path / "cli", split) == coco(config, split)
    files = sorted(p.name for p in (tmp_path / "cli" / "images").iterdir())
    assert files == sorted(p.name for p in (config / "images").iterdir())
    assert all((tmp_path / "cli" / "images" / f).read_bytes() == (config / "images" / f).read_bytes() for f in files)
    assert json.loads((tmp_path / "run" / "check_dataset_result.json").read_text())["check_pass"] is True


def bad_input(tmp_path, case):
    """(rasters, labels, keyword arguments, expected message part) for one kind of bad input."""
    shapes, classes = pixel_labels()
    raster = write_raster(tmp_path / "scene.tif")
    labels = write_labels(tmp_path / "labels.gpkg", [to_map(g) for g in shapes], classes)
    if case == "no CRS":
        return write_raster(tmp_path / "plain.tif", crs=None), labels, {"class_name": "x"}, "has no CRS"
    if case == "outside":
        far = write_labels(tmp_path / "far.gpkg", [shapely.affinity.translate(to_map(g), 1e5) for g in shapes],
                           classes)
        return raster, far, {"class_column": "cls"}, "lies on a raster"
    if case == "column":
        return raster, labels, {"class_column": "kind"}, "its columns: cls"
    if case == "empty":
        edge = write_raster(tmp_path / "edge.tif", nodata=True)
        return edge, write_labels(tmp_path / "strip.gpkg", [to_map(box(20, 20, 60, 60))], ["car"]), \
            {"class_column": "cls", "nodata_threshold": 1.0}, "no chip keeps a label"
    if case == "raster unreadable":
        (tmp_path / "broken.tif").write_bytes(b"not a tiff")
        return tmp_path / "broken.tif", labels, {"class_name": "x"}, "cannot open raster broken.tif"
    (tmp_path / "broken.gpkg").write_bytes(b"not a geopackage")
    return raster, tmp_path / "broken.gpkg", {"class_name": "x"}, "cannot read labels broken.gpkg"


@pytest.mark.parametrize("case", ["no CRS", "outside", "column", "empty", "raster unreadable", "labels unreadable"])
def test_bad_input_is_one_clear_line(tmp_path, case):
    rasters, labels, kwargs, expected = bad_input(tmp_path, case)
    before = sorted(p.name for p in tmp_path.iterdir())
    with pytest.raises(UserError) as err:
        chip_dataset(rasters, labels, tmp_path / "out", **kwargs)
    message = str(err.value)
    assert expected in message and "\n" not in message and len(message) <= 200, message
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # nothing written, nothing beside the inputs
