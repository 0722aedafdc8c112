"""Serving with the real (tiny quick-start) model: polygons beside PaddleX's RLE, micro-batching that changes no
answer, the GeoTIFF -> GeoJSON endpoint against the pipeline's own GeoTIFF prediction, and readiness."""
import base64
import json
from concurrent.futures import ThreadPoolExecutor

import cv2
import numpy as np
import pytest
import rasterio
import requests
from fastapi.testclient import TestClient
from rasterio.transform import from_origin
from shapely.geometry import shape

import tutorial_lib as tl
from tutorial_lib.pipeline.vectors import mask_to_polygons, polygon_to_mask
from tutorial_lib.predict import decode_rle
from tutorial_lib.serving import BackgroundServer, Batching, Limits, create_app

LOW = 0.05  # the tiny test model is barely trained: a low threshold gives it instances


@pytest.fixture(scope="module")
def pipeline(quickstart_model):
    return tl.create_pipeline("instance_segmentation", model_dir=quickstart_model[0])


@pytest.fixture(scope="module")
def scene(quickstart_model):
    from tutorial_lib.quickstart import training_scene

    return cv2.imread(str(training_scene(quickstart_model[0])))[..., ::-1].copy()


def png_b64(image):
    return base64.b64encode(cv2.imencode(".png", np.ascontiguousarray(image[..., ::-1]))[1].tobytes()).decode()


def test_polygons_trace_the_same_masks_as_the_rle(pipeline, scene):
    client = TestClient(create_app(pipeline, visualize=False))
    body = {"image": png_b64(scene), "threshold": LOW}
    plain = client.post("/instance-segmentation", json=body).json()["result"]
    with_polygons = client.post("/instance-segmentation", json={**body, "polygons": True}).json()["result"]
    assert len(plain["instances"]) > 0 and all("polygon" not in i for i in plain["instances"])
    for bare, item in zip(plain["instances"], with_polygons["instances"], strict=True):
        assert {k: v for k, v in item.items() if k != "polygon"} == bare  # PaddleX's fields unchanged
        mask = decode_rle({"size": item["mask"]["size"], "counts": item["mask"]["rleResult"]})
        if not mask.any():
            assert item["polygon"] is None
            continue
        geometry = shape(item["polygon"])
        assert item["polygon"]["type"] in ("Polygon", "MultiPolygon") and geometry.is_valid
        assert geometry.area == mask.sum()  # pixel edges: one unit of area per pixel
        assert np.array_equal(polygon_to_mask(geometry, mask.shape), mask)
        assert geometry.equals(mask_to_polygons(mask))


def test_micro_batching_with_the_model_changes_no_answer(pipeline, scene):
    images = [scene, cv2.resize(scene, (320, 192)), np.ascontiguousarray(scene[::-1]), scene[:200, :240]]
    bodies = [{"image": png_b64(images[i % 4]), "threshold": LOW, "visualize": False} for i in range(8)]

    def answers(**options):
        with BackgroundServer(pipeline, **options) as server:
            with ThreadPoolExecutor(8) as pool:
                replies = list(pool.map(lambda b: requests.post(server.url + "/instance-segmentation", json=b,
                                                                timeout=120), bodies))
            batches = server.app.state.metrics.batch_size.collect()[0].samples
        assert all(r.status_code == 200 for r in replies)
        count = [s.value for s in batches if s.name.endswith("_count")][0]
        return [r.json()["result"] for r in replies], count

    plain, plain_calls = answers()
    batched, batched_calls = answers(batching=Batching(max_batch_size=4, max_wait_ms=200))
    assert batched == plain and sum(len(r["instances"]) for r in plain) > 0
    assert plain_calls == 8 and batched_calls < 8  # requests were grouped


@pytest.fixture()
def geotiff(scene, tmp_path):
    path = tmp_path / "scene.tif"
    mosaic = np.tile(scene, (2, 2, 1))  # 512 x 512
    with rasterio.open(path, "w", driver="GTiff", height=mosaic.shape[0], width=mosaic.shape[1], count=3,
                       dtype="uint8", crs="EPSG:32633", transform=from_origin(500000.0, 4600000.0, 0.5, 0.5)) as dst:
        dst.write(np.transpose(mosaic, (2, 0, 1)))
    return path


def test_geotiff_in_geojson_out_matches_the_pipeline(pipeline, geotiff, tmp_path):
    client = TestClient(create_app(pipeline))
    body = {"image": base64.b64encode(geotiff.read_bytes()).decode(), "threshold": LOW, "sliceSize": 256,
            "overlapRatio": 0.25}
    response = client.post("/instance-segmentation/geotiff", json=body)
    assert response.status_code == 200, response.text
    result = response.json()["result"]
    summary = pipeline.predict_geotiff(str(geotiff), tmp_path / "direct.geojson", slice_size=256,
                                       overlap_ratio=0.25, threshold=LOW, progress=False)
    direct = json.loads((tmp_path / "direct.geojson").read_text())
    assert result["geojson"] == direct and result["instances"] == summary["instances"] > 0
    assert result["crs"] == summary["crs"] and "32633" in result["crs"]
    assert all(f["geometry"]["type"] in ("Polygon", "MultiPolygon") for f in direct["features"])

    png = client.post("/instance-segmentation/geotiff", json={"image": png_b64(np.zeros((8, 8, 3), np.uint8))})
    assert png.status_code == 400 and "not a GeoTIFF" in png.json()["errorMsg"]
    small = TestClient(create_app(pipeline, limits=Limits(max_geotiff_pixels=100_000)))
    over = small.post("/instance-segmentation/geotiff", json=body)
    assert over.status_code == 413 and "512x512" in over.json()["errorMsg"]
    bad = client.post("/instance-segmentation/geotiff", json={**body, "sliceSize": "big", "polygons": True})
    assert bad.status_code == 400 and "unknown field(s) ['polygons']" in bad.json()["errorMsg"]


def test_ready_only_after_load_and_warm_up(quickstart_model):
    loaded = []

    def load():
        loaded.append(tl.create_pipeline("instance_segmentation", model_dir=quickstart_model[0]))
        return loaded[-1]

    with TestClient(create_app(load)) as client:  # runs the app's startup: loading starts in the model thread
        assert client.get("/health/live").status_code == 200
        worker = client.app.state.worker
        assert worker.ready.wait(120)
        ready = client.get("/health/ready")
        assert ready.status_code == 200 and ready.json()["result"] == {"status": "ready"} and len(loaded) == 1
