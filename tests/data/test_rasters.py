"""Rasters as they come: grey, RGB, multispectral with band selection; uint8, uint16, float32; alpha, nodata value,
internal mask; the training stretch carried by an exported model (inference.yml RasterInput) and applied verbatim
at prediction; no detection in no-data. Tiny rasters, expected pixels worked out by hand."""
import json
from types import SimpleNamespace

import numpy as np
import pytest
import rasterio
import yaml
from rasterio.transform import from_origin

from tutorial_lib.data.raster import RasterReader, RasterSettings, open_raster
from tutorial_lib.errors import UserError
from tutorial_lib.pipeline.options import SliceOptions

UTM = "EPSG:32633"
TRANSFORM = from_origin(500000.0, 4600000.0, 1.0, 1.0)
RAMP = np.arange(100).reshape(10, 10)  # 0..99: percentiles 2 and 98 are 1.98 and 97.02 (numpy's linear rule)


def write(path, data, georef=True, mask=None, **profile):
    data = np.asarray(data)
    count, height, width = data.shape
    profile = {"driver": "GTiff", "width": width, "height": height, "count": count, "dtype": data.dtype.name,
               **({"crs": UTM, "transform": TRANSFORM} if georef else {}), **profile}
    with rasterio.Env(GDAL_TIFF_INTERNAL_MASK=True):
        with rasterio.open(path, "w", **profile) as dst:
            dst.write(data)
            if mask is not None:
                dst.write_mask(mask)
    return path


def read_all(path, **kwargs):
    """(bands, rgb, valid, limits) of the whole raster through RasterReader."""
    with open_raster(path) as ds:
        reader = RasterReader(ds, **kwargs)
        return reader.bands, reader.read(0, 0, ds.width, ds.height), reader.valid(0, 0, ds.width, ds.height), \
            reader.limits


def one_line(err):
    message = str(err.value)
    assert "\n" not in message and len(message) <= 200, message
    return message


# ------------------------------------------------------------------------------------------ rasters as they come
def test_grey_uint8_is_repeated_and_has_no_mask(tmp_path):
    data = RAMP.astype(np.uint8)[None]
    bands, rgb, valid, limits = read_all(write(tmp_path / "grey.tif", data))
    assert bands == [1, 1, 1] and valid is None and limits is None
    assert rgb.shape == (10, 10, 3) and (rgb == data[0][..., None]).all()


def test_three_band_uint8_is_read_as_it_is(tmp_path):
    data = np.stack([RAMP, RAMP + 100, 99 - RAMP]).astype(np.uint8)
    bands, rgb, valid, limits = read_all(write(tmp_path / "rgb.tif", data))
    assert bands == [1, 2, 3] and valid is None and limits is None
    assert np.array_equal(rgb, data.transpose(1, 2, 0))


def test_four_band_uint16_with_band_selection_is_stretched(tmp_path):
    data = np.stack([1000 * b + RAMP for b in range(1, 5)]).astype(np.uint16)
    path = write(tmp_path / "ms.tif", data)
    bands, rgb, valid, limits = read_all(path, bands=[3, 2, 1])
    assert bands == [3, 2, 1] and valid is None
    assert limits == {b: (pytest.approx(1000 * b + 1.98), pytest.approx(1000 * b + 97.02)) for b in (3, 2, 1)}
    # offset 0 -> below the low limit -> 0; offset 99 -> 255; offset 50: 48.02 / 95.04 * 255 + 0.5 = 129.3 -> 129
    assert (rgb[0, 0] == 0).all() and (rgb[9, 9] == 255).all() and (rgb[5, 0] == 129).all()
    assert read_all(path)[0] == [1, 2, 3]  # four colour bands, no bands=: the first three


def test_float32_nan_is_nodata(tmp_path):
    data = RAMP.astype(np.float32)
    data[0, :] = np.nan  # values 0..9 missing: the rest is 10..99, percentiles 10 + 0.02 * 89 and 10 + 0.98 * 89
    bands, rgb, valid, limits = read_all(write(tmp_path / "float.tif", data[None]))
    assert bands == [1, 1, 1]
    assert limits == {1: (pytest.approx(11.78), pytest.approx(97.22))}
    assert np.array_equal(valid, ~np.isnan(data))
    assert (rgb[0] == 0).all() and (rgb[9, 9] == 255).all() and (rgb[5, 5] == 129).all()  # 55: 43.22/85.44*255+.5


def test_rgb_plus_alpha_alpha_is_a_mask_never_a_colour(tmp_path):
    alpha = np.where(RAMP % 10 < 3, 0, 255).astype(np.uint8)  # the three left columns transparent
    data = np.stack([RAMP + 100, RAMP, RAMP + 50, alpha]).astype(np.uint8)
    path = write(tmp_path / "rgba.tif", data, photometric="RGB", alpha="YES")
    bands, rgb, valid, _ = read_all(path)
    assert bands == [1, 2, 3] and np.array_equal(valid, alpha > 0)
    assert (rgb[:, :3] == 0).all() and np.array_equal(rgb[:, 3:], data[:3, :, 3:].transpose(1, 2, 0))
    with pytest.raises(UserError, match="band 4 of rgba.tif is its alpha band") as err:
        read_all(path, bands=[4, 2, 1])
    assert "[1, 2, 3]" in one_line(err)
    grey_alpha = write(tmp_path / "la.tif", data[[0, 3]], alpha="YES")
    with rasterio.open(grey_alpha) as ds:
        assert ds.colorinterp[1] == rasterio.enums.ColorInterp.alpha
    assert read_all(grey_alpha)[0] == [1, 1, 1]  # grey + alpha is grey, not two bands


def test_nodata_value_is_masked_and_left_out_of_the_stretch(tmp_path):
    data = np.stack([RAMP + 1] * 3).astype(np.uint16)  # 1..100
    data[:, :, :2] = 0  # the collar: two left columns
    bands, rgb, valid, limits = read_all(write(tmp_path / "collar.tif", data, nodata=0))
    assert np.array_equal(valid, RAMP % 10 >= 2)
    # the 80 valid values are k + 1 for k = 10 r + c, c >= 2: sorted 3..10, 13..20, ...; 2nd pct at index 1.58:
    # between 4 and 5 -> 4.58; 98th at index 77.42: between 98 (index 77) and 99 -> 98.42
    assert limits == {b: (pytest.approx(4.58), pytest.approx(98.42)) for b in (1, 2, 3)}
    assert (rgb[:, :2] == 0).all() and (rgb[9, 9] == 255).all()


def test_internal_mask(tmp_path):
    data = np.stack([RAMP + 10] * 3).astype(np.uint8)
    mask = np.where(RAMP < 30, 0, 255).astype(np.uint8)  # the three top rows masked
    path = write(tmp_path / "masked.tif", data, mask=mask)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["masked.tif"]  # internal: no .msk beside it
    _, rgb, valid, _ = read_all(path)
    assert np.array_equal(valid, mask > 0)
    assert (rgb[:3] == 0).all() and np.array_equal(rgb[3:], data[:, 3:].transpose(1, 2, 0))


def test_unsupported_rasters_are_one_clear_line(tmp_path):
    two = write(tmp_path / "two.tif", np.stack([RAMP, 99 - RAMP]).astype(np.uint8))
    with pytest.raises(UserError, match="two.tif has 2 colour bands") as err:
        read_all(two)
    assert "bands=" in one_line(err)
    bands, rgb, _, _ = read_all(two, bands=[2])  # one of them, as grey
    assert bands == [2, 2, 2] and (rgb[0, 0] == 99).all()
    with pytest.raises(UserError, match=r"bands=\[1, 2\] does not fit two.tif") as err:
        read_all(two, bands=[1, 2])
    one_line(err)
    complex_raster = write(tmp_path / "sar.tif", (RAMP + 1j * RAMP).astype(np.complex64)[None])
    with pytest.raises(UserError, match="sar.tif band 1 holds complex64 pixels") as err:
        read_all(complex_raster)
    one_line(err)


# ------------------------------------------------------------------------------------------ the training stretch
SETTINGS = RasterSettings((4, 3, 2), {4: (4010.0, 4090.0), 3: (3000.0, 3051.0), 2: (2020.0, 2071.0)}, "uint16")


def test_settings_round_trip_as_json_and_yaml():
    block = SETTINGS.to_dict()
    assert block == {"bands": [4, 3, 2], "dtype": "uint16",
                     "stretch": {4: [4010.0, 4090.0], 3: [3000.0, 3051.0], 2: [2020.0, 2071.0]}}
    assert RasterSettings.from_dict(json.loads(json.dumps(block))) == SETTINGS  # JSON's string keys
    assert RasterSettings.from_dict(yaml.safe_load(yaml.safe_dump(block))) == SETTINGS
    byte = RasterSettings.from_dict({"bands": [1, 2, 3], "dtype": "uint8", "stretch": None})  # uint8: no stretch
    assert (byte.bands, byte.stretch, byte.dtype) == ((1, 2, 3), None, "uint8")
    with pytest.raises(UserError, match="RasterInput is malformed") as err:
        RasterSettings.from_dict({"bands": [4, 3, 2], "stretch": {4: [1, 2]}})  # bands 3 and 2 without limits
    one_line(err)


def test_stored_limits_replace_the_scene_percentiles(tmp_path):
    data = np.stack([1000 * b + RAMP for b in range(1, 5)]).astype(np.uint16)
    path = write(tmp_path / "scene.tif", data)
    bands, rgb, _, limits = read_all(path, settings=SETTINGS)
    assert bands == [4, 3, 2] and limits == {4: (4010.0, 4090.0), 3: (3000.0, 3051.0), 2: (2020.0, 2071.0)}
    # pixel (5, 0), offset 50: R (50 - 10) / 80 * 255 + .5 = 128 -> 128; G 50 / 51 * 255 + .5 = 250.5 -> 250;
    # B (50 - 20) / 51 * 255 + .5 = 150.5 -> 150; offset 0: R and B below their low limits -> 0, G exactly 0
    assert rgb[5, 0].tolist() == [128, 250, 150] and rgb[0, 0].tolist() == [0, 0, 0]
    # the caller's bands win when there are as many: each takes the limits of the stored band in its place
    bands, rgb, _, _ = read_all(path, settings=SETTINGS, bands=[1, 2, 3])
    assert bands == [1, 2, 3] and rgb[9, 9].tolist() == [0, 0, 255]  # 1099 < 4010, 2099 < 3000, 3099 > 2071
    with pytest.raises(UserError, match=r"bands=\[1\] does not fit the model, trained on bands \[4, 3, 2\]") as err:
        read_all(path, settings=SETTINGS, bands=[1])
    one_line(err)


def test_a_raster_unlike_the_training_ones_is_one_clear_line(tmp_path):
    three = write(tmp_path / "scene.tif", np.stack([RAMP] * 3).astype(np.uint16))
    with pytest.raises(UserError) as err:
        read_all(three, settings=SETTINGS)
    assert one_line(err).startswith("scene.tif has 3 bands but the model was trained on bands [4, 3, 2] of uint16 "
                                    "rasters; pass bands=")
    byte = write(tmp_path / "byte.tif", np.stack([RAMP] * 4).astype(np.uint8), photometric="MINISBLACK")  # no alpha
    with pytest.raises(UserError, match="byte.tif holds uint8 pixels but the model was trained on bands") as err:
        read_all(byte, settings=SETTINGS)
    one_line(err)
    grey = RasterSettings((2, 2, 2), None, "uint8")
    bands, rgb, _, _ = read_all(byte, settings=grey, bands=[1])  # a grey model: one band number
    assert bands == [1, 1, 1] and np.array_equal(rgb[..., 0], RAMP)


def chips(tmp_path):
    """A 4-band uint16 scene chipped with bands 4, 3, 2 (one square label per chip)."""
    from pyogrio.raw import write as write_vector
    from shapely.geometry import box

    from tutorial_lib.data.geochips import chip_dataset

    rng = np.random.default_rng(0)
    data = (rng.integers(100, 4000, (4, 128, 128)) + np.arange(4)[:, None, None] * 500).astype(np.uint16)
    raster = write(tmp_path / "scene.tif", data)
    squares = [box(500000 + x, 4600000 - y - 12, 500000 + x + 12, 4600000 - y) for x in (20, 84) for y in (20, 84)]
    write_vector(str(tmp_path / "labels.gpkg"), np.array([g.wkb for g in squares], dtype=object),
                 [np.array(["car"] * len(squares), dtype=object)], fields=["cls"], driver="GPKG",
                 geometry_type="Polygon", crs=UTM)
    chip_dataset(raster, tmp_path / "labels.gpkg", tmp_path / "chips", class_column="cls", chip_size=64,
                 block_size=64, bands=[4, 3, 2])
    return raster, tmp_path / "chips"


def test_export_writes_raster_input_and_the_predictor_reads_it(tmp_path, monkeypatch):
    from tutorial_lib.config import load_config
    from tutorial_lib.engine.export import dataset_raster_settings, write_inference_config
    from tutorial_lib.models.adapters import get_adapter
    from tutorial_lib.predict import predictor

    _, dataset = chips(tmp_path)
    info = json.loads((dataset / "annotations" / "instance_train.json").read_text())["info"]["geochips"]
    settings = dataset_raster_settings({"Global": {"dataset_dir": str(dataset)}})
    assert settings.bands == (4, 3, 2) and settings.dtype == info["dtype"] == "uint16"
    assert settings.stretch == {int(b): tuple(v) for b, v in info["limits"].items()}
    assert [settings.stretch[b][0] for b in (4, 3, 2)] == info["stretch"]["low"]
    cfg = load_config("Mask-RT-DETR-S", {})
    model = tmp_path / "model"
    model.mkdir()
    meta = {"model_name": "Mask-RT-DETR-S", "label_list": ["car"]}
    write_inference_config(model, meta, get_adapter(cfg), ["bbox", "bbox_num", "mask"], settings)
    block = yaml.safe_load((model / "inference.yml").read_text())["RasterInput"]
    assert block == {"bands": [4, 3, 2], "dtype": "uint16",
                     "stretch": {b: list(settings.stretch[b]) for b in (4, 3, 2)}}
    for name in ("inference.pdmodel", "inference.pdiparams"):
        (model / name).write_bytes(b"")
    monkeypatch.setattr(predictor, "create_backend", lambda *a: None)  # the backend is not what is tested here
    assert predictor.Predictor(model).raster_settings == settings
    # an ordinary dataset (no geochips info): no block, and the predictor says None
    plain = tmp_path / "plain"
    (plain / "annotations").mkdir(parents=True)
    (plain / "annotations" / "instance_train.json").write_text(json.dumps({"images": [], "annotations": []}))
    assert dataset_raster_settings({"Global": {"dataset_dir": str(plain)}}) is None
    write_inference_config(model, meta, get_adapter(cfg), ["bbox", "bbox_num", "mask"])
    assert "RasterInput" not in yaml.safe_load((model / "inference.yml").read_text())
    assert predictor.Predictor(model).raster_settings is None


def test_prediction_reads_scenes_with_the_training_stretch(tmp_path):
    """The pipeline passes its predictor's settings to predict_geotiff: the model sees the training pixels."""
    from PIL import Image

    from tutorial_lib.data.geochips import raster_settings
    from tutorial_lib.pipeline import InstanceSegmentationPipeline

    raster, dataset = chips(tmp_path)
    settings, seen = raster_settings(dataset), []

    class Recorder:
        labels, batch_size, model_name = ["car"], 1, "recorder"
        raster_settings = settings

        def predict(self, inputs, threshold=None, batch_size=None):
            seen.append(inputs)
            yield SimpleNamespace(boxes=[], masks=np.zeros((0,) + inputs.shape[:2], bool))

    InstanceSegmentationPipeline({}, Recorder()).predict_geotiff(raster, tmp_path / "out.geojson",
                                                                 slicing=SliceOptions(128), progress=False)
    train = json.loads((dataset / "annotations" / "instance_train.json").read_text())
    image = train["images"][0]
    col, row, w, h = image["window"]
    chip = np.asarray(Image.open(dataset / "images" / image["file_name"]))
    assert len(seen) == 1 and np.array_equal(seen[0][row:row + h, col:col + w], chip)  # the same pixels, exactly


# ------------------------------------------------------------------------------------------ no detection in no-data
def test_no_detection_in_the_nodata_collar(tmp_path):
    from tutorial_lib.pipeline.geo import predict_geotiff

    data = np.full((3, 64, 64), 120, np.uint8)
    data[:, :, :16] = 0  # the collar: columns 0-15
    raster = write(tmp_path / "collar.tif", data, nodata=0)
    boxes = {"A": (10, 20, 10, 30), "B": (30, 40, 5, 20), "C": (45, 55, 30, 50), "D": (56, 60, 8, 24)}

    def predict_fn(tile):
        masks = np.zeros((len(boxes),) + tile.shape[:2], bool)
        for k, (y0, y1, x0, x1) in enumerate(boxes.values()):
            masks[k, y0:y1, x0:x1] = True
        return SimpleNamespace(boxes=[{"cls_id": 0, "score": 0.9 - 0.1 * k, "label": name}
                                      for k, name in enumerate(boxes)], masks=masks)

    predict_geotiff(predict_fn, raster, tmp_path / "out.geojson", slicing=SliceOptions(64), progress=False)
    found = {f["properties"]["score"]: f["properties"]
             for f in json.loads((tmp_path / "out.geojson").read_text())["features"]}
    # A: 10 x 20 px, 6 columns (60 px, 30 %) on no-data -> kept, cut to 140 px from column 16
    # B: 10 x 15 px, 11 columns (110 px, 73 %) on no-data -> dropped
    # C: never on no-data -> as predicted; D: 4 x 16 px, exactly half on no-data -> kept, 32 px
    assert sorted(found) == [pytest.approx(0.6), pytest.approx(0.7), pytest.approx(0.9)]
    a, c, d = (found[s] for s in sorted(found, reverse=True))
    assert (a["pixel_area"], a["pixel_bbox"]) == (140, [16, 10, 30, 20])
    assert (c["pixel_area"], c["pixel_bbox"]) == (200, [30, 45, 50, 55])
    assert (d["pixel_area"], d["pixel_bbox"]) == (32, [16, 56, 24, 60])


def test_write_geotiff_places_the_array_in_map_space(tmp_path):
    import rasterio

    from tutorial_lib.data.raster import write_geotiff

    image = np.arange(4 * 6 * 3, dtype=np.uint8).reshape(4, 6, 3)
    transform = write_geotiff(tmp_path / "a.tif", image, "EPSG:32633", (500000.0, 4600000.0), 0.5)
    with rasterio.open(tmp_path / "a.tif") as ds:
        assert (ds.count, ds.height, ds.width, ds.crs.to_epsg()) == (3, 4, 6, 32633)
        assert ds.transform == transform and ds.xy(3, 5, offset="ul") == (500002.5, 4599998.5)
        np.testing.assert_array_equal(np.moveaxis(ds.read(), 0, -1), image)
