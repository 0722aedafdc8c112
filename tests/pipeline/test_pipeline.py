"""The pipeline API, its inputs, sliced inference with a real model, serving and the pipeline CLI."""
import base64
import json
import os
import subprocess
import sys
import threading
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

import cv2
import numpy as np
import pytest
import yaml
from fastapi.testclient import TestClient

import tutorial_lib as tl
from conftest import REPO
from tutorial_lib.predict import decode_rle
from tutorial_lib.serving import BackgroundServer, Client, create_app

LOW = 0.05  # the tiny test model is barely trained: a low threshold gives it instances to compare


@pytest.fixture(scope="module")
def scene(quickstart_model):
    """A 256 px training scene of the tiny model (it finds objects there) -- stands in for the demo image."""
    from tutorial_lib.quickstart import training_scene

    return training_scene(quickstart_model[0])


@pytest.fixture(scope="module")
def pipeline(quickstart_model):
    return tl.create_pipeline("instance_segmentation", model_dir=quickstart_model[0])


def signature(result):
    return [(b["cls_id"], round(b["score"], 4)) for b in result.boxes], result.masks.sum()


def test_quickstart_model_is_cached(quickstart_model, capsys):
    from tutorial_lib.quickstart import quickstart_model_dir

    model_dir, home = quickstart_model
    assert (model_dir / "inference.yml").exists()
    assert quickstart_model_dir(epochs=4, num_train=32) == model_dir
    assert "training" not in capsys.readouterr().out  # second call: no training


def test_same_image_through_every_input_form(pipeline, scene, tmp_path):
    image = cv2.imread(str(scene))[..., ::-1]
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "a.jpg").write_bytes(scene.read_bytes())
    (folder / "b.jpg").write_bytes(scene.read_bytes())
    handler = partial(SimpleHTTPRequestHandler, directory=str(folder))
    handler.log_message = lambda *a: None
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/a.jpg"
        inputs = [str(scene), scene.as_uri(), image, url]
        results = list(pipeline.predict(inputs, threshold=LOW)) + list(pipeline.predict(str(folder), threshold=LOW))
    finally:
        server.shutdown()
    assert [r.input_path for r in results] == [str(scene), str(scene), None, url, str(folder / "a.jpg"),
                                               str(folder / "b.jpg")]
    reference = signature(results[0])
    assert len(results[0].boxes) > 0
    assert all(signature(r) == reference for r in results[1:])
    res = results[0].json["res"]
    assert sorted(res) == ["boxes", "input_path", "masks", "page_index"]
    assert sorted(res["boxes"][0]) == ["cls_id", "coordinate", "label", "score"]
    assert np.array_equal(decode_rle(res["masks"][0]), results[0].masks[0])
    high = list(pipeline.predict(str(scene), threshold=0.99))[0]
    assert all(b["score"] >= 0.99 for b in high.boxes) and len(high.boxes) <= len(results[0].boxes)


def test_edited_pipeline_yaml_switches_the_model(quickstart_model, scene, tmp_path):
    path = tl.get_pipeline_config("instance_segmentation", tmp_path)
    cfg = yaml.safe_load(path.read_text())
    # a user who swaps the model names it too: a model_name that contradicts model_dir is an error
    # (tests/test_official_weights.py)
    cfg["SubModules"]["InstanceSegmentation"].update(model_name=tl.CPU_MODEL, model_dir=str(quickstart_model[0]),
                                                     threshold=LOW)
    path.write_text(yaml.safe_dump(cfg))
    pipeline = tl.create_pipeline(str(path))
    assert pipeline.predictor.model_dir == quickstart_model[0] and pipeline.predictor.threshold == LOW
    result = next(pipeline.predict(str(scene)))
    result.save_to_img(tmp_path / "out")
    result.save_to_json(tmp_path / "out")
    saved = json.loads((tmp_path / "out" / f"{scene.stem}_res.json").read_text())
    assert saved["res"]["boxes"] == result.json["res"]["boxes"]
    assert cv2.imread(str(tmp_path / "out" / f"{scene.stem}_res.png")).shape == (256, 256, 3)


def test_sliced_inference_with_one_tile_keeps_a_deduplicated_subset(pipeline, scene):
    plain = next(pipeline.predict(str(scene), threshold=LOW))
    sliced = pipeline.predict_sliced(str(scene), slice_size=256, overlap_ratio=0.2, threshold=LOW, progress=False)
    kept, original = signature(sliced)[0], signature(plain)[0]
    assert 0 < len(kept) <= len(original) and set(kept) <= set(original)  # mask NMS only removes duplicates


def test_sliced_inference_on_a_large_scene_leaves_nothing_to_merge(pipeline, scene):
    from tutorial_lib.pipeline.options import SliceOptions
    from tutorial_lib.pipeline.sliced import sliced_predict

    mosaic = np.tile(cv2.imread(str(scene))[..., ::-1], (3, 3, 1))  # 768 x 768
    instances = sliced_predict(mosaic, lambda tile: next(pipeline.predictor.predict(tile, threshold=LOW)),
                               SliceOptions(slice_size=320, overlap_ratio=0.25), progress=False)
    assert len(instances) > 0 and (instances.boxes[:, 2:] <= 768).all()
    masks = instances.full_masks()
    for a in range(len(instances)):
        for b in range(a + 1, len(instances)):
            if instances.class_ids[a] == instances.class_ids[b]:  # nothing left that matches (IoU > 0.5)
                assert (masks[a] & masks[b]).sum() <= 0.5 * (masks[a] | masks[b]).sum()
    result = pipeline.predict_sliced(mosaic, slice_size=320, overlap_ratio=0.25, threshold=LOW, progress=False)
    assert result.masks.shape == (len(instances), 768, 768)


def test_serving_returns_paddlex_schema(pipeline, scene):
    client = TestClient(create_app(pipeline))
    image = cv2.imread(str(scene))[..., ::-1]
    png = cv2.imencode(".png", image[..., ::-1])[1].tobytes()  # lossless: the server sees the same pixels
    body = {"image": base64.b64encode(png).decode(), "threshold": LOW}
    response = client.post("/instance-segmentation", json=body)
    assert response.status_code == 200, response.text
    payload = response.json()
    assert payload["errorCode"] == 0 and payload["errorMsg"] == "Success"
    instances = payload["result"]["instances"]
    plain = next(pipeline.predict(image, threshold=LOW))
    assert len(instances) == len(plain.boxes) > 0
    first = instances[0]
    assert sorted(first) == ["bbox", "categoryId", "categoryName", "mask", "score"]
    mask = decode_rle({"size": first["mask"]["size"], "counts": first["mask"]["rleResult"]})
    assert mask.shape == (256, 256) and np.array_equal(mask, plain.masks[0])
    overlay = cv2.imdecode(np.frombuffer(base64.b64decode(payload["result"]["image"]), np.uint8), cv2.IMREAD_COLOR)
    assert overlay.shape == (256, 256, 3)


def test_predictions_from_short_lived_threads(pipeline, scene):
    """Web servers and notebooks call the pipeline from threads that come and go. A Paddle Inference predictor
    run on a new thread after an earlier one ended used to fail ("could not execute a primitive")."""
    expected = signature(next(pipeline.predict(str(scene), threshold=LOW)))
    seen = []
    for _ in range(3):
        worker = threading.Thread(target=lambda: seen.append(signature(next(pipeline.predict(str(scene),
                                                                                              threshold=LOW)))))
        worker.start()
        worker.join()
    assert len(seen) == 3 and all(s[0] == expected[0] and s[1] == expected[1] for s in seen)


def test_serving_without_overlay_and_through_a_background_server(pipeline, scene):
    import requests

    with BackgroundServer(pipeline) as server:
        client = Client(server.url)
        drawn = client.predict(str(scene), threshold=LOW)
        bare = client.predict(scene.read_bytes(), threshold=LOW, visualize=False)
        assert bare["image"] is None and drawn["image"]
        assert bare["instances"] == drawn["instances"] and len(bare["instances"]) > 0
        with pytest.raises(tl.UserError, match="413"):
            client.predict(b"\x89PNG" + b"0" * (16 * 1024 * 1024))  # over the default image limit
        assert requests.get(server.url + "/health", timeout=5).json()["result"]["status"] == "healthy"
    with pytest.raises(requests.ConnectionError):  # stopped: the port no longer answers
        requests.get(server.url + "/health", timeout=5)
    quiet = TestClient(create_app(pipeline, visualize=False))  # the server-wide default
    body = {"image": base64.b64encode(scene.read_bytes()).decode(), "threshold": LOW}
    assert quiet.post("/instance-segmentation", json=body).json()["result"]["image"] is None
    assert quiet.post("/instance-segmentation", json={**body, "visualize": True}).json()["result"]["image"]


def test_pipeline_cli(quickstart_model, scene, tmp_path):
    env = dict(os.environ, PYTHONPATH=str(REPO))

    def cli(*args):
        return subprocess.run([sys.executable, "-m", "tutorial_lib", *args], capture_output=True, text=True,
                              cwd=tmp_path, env=env, timeout=300)

    made = cli("--get_pipeline_config", "instance_segmentation", "--save_path", "my_path")
    assert made.returncode == 0, made.stderr
    path = tmp_path / "my_path" / "instance_segmentation.yaml"
    cfg = yaml.safe_load(path.read_text())
    cfg["SubModules"]["InstanceSegmentation"].update(model_name=tl.CPU_MODEL, model_dir=str(quickstart_model[0]))
    path.write_text(yaml.safe_dump(cfg))
    ran = cli("--pipeline", str(path), "--input", str(scene), "--device", "cpu", "--save_path", "out",
              "--threshold", str(LOW))
    assert ran.returncode == 0, ran.stderr
    saved = json.loads((tmp_path / "out" / f"{scene.stem}_res.json").read_text())
    assert saved["res"]["input_path"] == str(scene) and len(saved["res"]["boxes"]) > 0
    bad = cli("--pipeline", str(path), "--input", str(tmp_path / "missing.png"))
    assert bad.returncode == 2 and "does not exist" in bad.stderr
