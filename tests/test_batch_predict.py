"""Batch prediction over a folder: a run killed halfway, then restarted, ends with exactly the outputs of an
uninterrupted run (finished scenes skipped, half-written files never mistaken for finished ones)."""
import os
import signal
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import rasterio
from rasterio.transform import from_origin

from tutorial_lib.pipeline import InstanceSegmentationPipeline
from tutorial_lib.pipeline.batch import predict_folder
from tutorial_lib.pipeline.options import SliceOptions
from tutorial_lib.predict import InstanceSegResult
from tutorial_lib.structures import Instances

HERE = Path(__file__).resolve().parent
SLICE = 128


class FakePredictor:
    """Bright blobs are class 0, dark-red blobs class 1; ``kill_at``: SIGKILL this process on that call."""

    labels = ["bright", "red"]
    batch_size = 1
    model_name, model_dir = "fake", None

    def __init__(self, kill_at=None):
        self.calls = 0
        self.kill_at = kill_at

    def predict(self, inputs, threshold=None, batch_size=None):
        from tutorial_lib.predict.inputs import iter_sources

        for path, load in iter_sources(inputs):
            self.calls += 1
            if self.calls == self.kill_at:
                os.kill(os.getpid(), signal.SIGKILL)
            image = load()
            masks, classes = [], []
            for cls, pixels in ((0, image[..., 1] > 150), (1, (image[..., 0] > 150) & (image[..., 1] < 100))):
                n, labels = cv2.connectedComponents(pixels.astype(np.uint8))
                masks += [labels == k for k in range(1, n)]
                classes += [cls] * (n - 1)
            masks = np.array(masks, bool).reshape(-1, *image.shape[:2])
            scores = [0.5 + 0.4 * m.sum() / m.size for m in masks]
            yield InstanceSegResult(path, Instances(image.shape[:2], np.zeros((len(masks), 4)), scores, classes, masks),
                                    self.labels, image=image)


def make_folder(folder, seed=0):
    """Three georeferenced GeoTIFFs (one without CRS: a plain raster) and two PNGs with blobs across tiles."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True)
    for k, name in enumerate(["a.png", "b.tif", "c.tif", "d.png", "e.tif", "f.tif"]):
        image = np.full((200, 220, 3), 30, np.uint8)
        for _ in range(5):
            x, y, r = int(rng.integers(20, 200)), int(rng.integers(20, 180)), int(rng.integers(6, 20))
            cv2.circle(image, (x, y), r, (230, 230, 230) if rng.random() < 0.5 else (220, 40, 40), -1)
        if name.endswith(".png"):
            cv2.imwrite(str(folder / name), image[..., ::-1])
            continue
        georef = {} if name == "f.tif" else {"crs": "EPSG:32632", "transform": from_origin(5e5 + k * 1e4, 5e6, 1, 1)}
        with rasterio.open(folder / name, "w", driver="GTiff", width=220, height=200, count=3, dtype="uint8",
                           **georef) as dst:
            dst.write(np.transpose(image, (2, 0, 1)))


def run_batch(folder, out, kill_at=None):
    pipeline = InstanceSegmentationPipeline({}, FakePredictor(kill_at))
    return predict_folder(pipeline, folder, out, slicing=SliceOptions(SLICE, 0.25), progress=False)


def contents(out):
    """Every output, comparable: bytes for text and images, pixels + georeferencing for rasters, features for
    the GeoPackage (its header holds a timestamp)."""
    from pyogrio.raw import read

    found = {}
    for path in sorted(Path(out).iterdir()):
        if path.suffix == ".gpkg":
            meta, _, geometry, fields = read(path)
            found[path.name] = (meta["crs"], [bytes(g) for g in geometry], [list(f) for f in fields])
        elif path.suffix == ".tif":
            with rasterio.open(path) as ds:
                found[path.name] = (ds.profile["crs"], ds.transform, ds.read().tobytes())
        else:
            found[path.name] = path.read_bytes()
    return found


@pytest.fixture(scope="module")
def scenes(tmp_path_factory):
    root = tmp_path_factory.mktemp("batch")
    make_folder(root / "in")
    reference = run_batch(root / "in", root / "reference")
    return root, contents(root / "reference"), reference


def test_uninterrupted_run_writes_every_output(scenes):
    root, expected, summary = scenes
    assert summary["scenes"] == 6 and len(summary["predicted"]) == 6 and not summary["skipped"]
    names = set(expected)
    for stem in "bce":
        assert {f"{stem}.geojson", f"{stem}.gpkg", f"{stem}_mask.tif", f"{stem}_instances.tif"} <= names
    for stem in "adf":  # plain images (and a TIFF without CRS): PaddleX's result image + JSON
        assert {f"{stem}_res.png", f"{stem}_res.json"} <= names
    assert len(names) == 3 * 4 + 3 * 2
    again = run_batch(root / "in", root / "reference")
    assert not again["predicted"] and len(again["skipped"]) == 6  # all finished: nothing redone
    assert contents(root / "reference") == expected


def test_killed_run_resumes_to_the_same_outputs(scenes, tmp_path):
    root, expected, _ = scenes
    out = tmp_path / "out"
    # each scene is 4 tiles of 128 px: call 11 is the 3rd tile of c.tif, whose GeoJSON is half-written by then
    child = subprocess.run([sys.executable, "-c", (
        "import sys; sys.path.insert(0, sys.argv[1]); import test_batch_predict as t; "
        "t.run_batch(sys.argv[2], sys.argv[3], kill_at=int(sys.argv[4]))"), str(HERE), str(root / "in"), str(out),
        "11"], capture_output=True, text=True, timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert child.returncode == -signal.SIGKILL, child.stderr[-2000:]
    left = sorted(p.name for p in out.iterdir())
    assert {"a_res.png", "a_res.json", "b.geojson", "b.gpkg", "b_mask.tif", "b_instances.tif"} <= set(left)
    assert "c.geojson" not in left and any(".tmp-" in name for name in left)  # c was cut short mid-write
    resumed = run_batch(root / "in", out)
    assert [Path(p).name for p in resumed["skipped"]] == ["a.png", "b.tif"]
    assert contents(out) == expected


def test_failure_between_two_outputs_of_one_scene_is_redone(scenes, tmp_path, monkeypatch):
    """An exception after d's result image is in place but before its JSON: d is not finished, so it is redone."""
    root, expected, _ = scenes
    out = tmp_path / "out"
    real_replace = os.replace

    def failing_replace(src, dst):
        if Path(dst).name == "d_res.json":
            raise OSError("disk full (injected)")
        return real_replace(src, dst)

    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(OSError, match="injected"):
        run_batch(root / "in", out)
    monkeypatch.setattr(os, "replace", real_replace)
    assert (out / "d_res.png").exists() and not (out / "d_res.json").exists()
    resumed = run_batch(root / "in", out)
    assert [Path(done["input"]).name for done in resumed["predicted"]] == ["d.png", "e.tif", "f.tif"]
    assert contents(out) == expected


def test_cli_geotiff_without_slice_size_and_folder_input(scenes, tmp_path, monkeypatch, capsys):
    """A GeoTIFF without --slice_size still gets georeferenced outputs; a folder runs the resumable batch."""
    import json

    import tutorial_lib.providers
    from tutorial_lib.cli import main

    root, expected, _ = scenes
    monkeypatch.setattr(tutorial_lib.providers, "create_pipeline",
                        lambda *a, **k: InstanceSegmentationPipeline({}, FakePredictor()))
    assert main(["--pipeline", "instance_segmentation", "--input", str(root / "in" / "b.tif"),
                 "--save_path", str(tmp_path / "one")]) == 0
    printed = capsys.readouterr().out
    summary = json.loads(printed[printed.index("{"):])
    assert summary["tiles"] == 1 and "32632" in summary["crs"] and summary["instances"] > 0
    with rasterio.open(tmp_path / "one" / "b_instances.tif") as ids:
        assert ids.crs.to_epsg() == 32632 and ids.read(1).max() == summary["instances"]
    geojson = json.loads((tmp_path / "one" / "b.geojson").read_text())
    assert all(7 < f["properties"]["area_m2"] < 1300 for f in geojson["features"])  # 1 m pixels, r 6-20 px discs
    assert main(["--pipeline", "instance_segmentation", "--input", str(root / "in"), "--slice_size", str(SLICE),
                 "--overlap_ratio", "0.25", "--save_path", str(tmp_path / "all")]) == 0
    assert contents(tmp_path / "all") == expected
    assert main(["--pipeline", "instance_segmentation", "--input", str(root / "in"), "--merge_mode", "WBF",
                 "--save_path", str(tmp_path / "bad")]) == 2
    assert "merge_mode" in capsys.readouterr().err
