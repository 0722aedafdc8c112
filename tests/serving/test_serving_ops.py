"""Operating the server: liveness and readiness while the model loads, Prometheus metrics, the in-flight limit
and micro-batching (with stand-in pipelines; the real model is in test_serving_model.py)."""
import base64
import io
import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import requests
from PIL import Image

from tutorial_lib.errors import UserError
from tutorial_lib.predict import InstanceSegResult
from tutorial_lib.serving import BackgroundServer, Batching, Limits, free_port, serve
from tutorial_lib.structures import Instances


def png_b64(value, width=48, height=32):
    buf = io.BytesIO()
    rng = np.random.default_rng(value)
    Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8)).save(buf, format="PNG")
    return base64.b64encode(buf.getvalue()).decode()


def fake_instances(image):
    """Deterministic 'detections' computed from the pixels: three boxes with masks and scores."""
    h, w = image.shape[:2]
    scores = np.array([0.2, 0.5, 0.8]) + image.reshape(-1, 3).mean(0) / 255.0 * 0.01
    masks = np.zeros((3, h, w), bool)
    boxes = []
    for k in range(3):
        x0, y0 = k * w // 4, k * h // 5
        masks[k, y0:y0 + h // 3, x0:x0 + w // 3] = True
        boxes.append([x0, y0, x0 + w // 3, y0 + h // 3])
    return Instances((h, w), boxes, scores, [0, 1, 0], masks)


class BatchingPipeline:
    """Takes lists of images in one call (like a model whose forward pass takes batches); records call sizes."""

    def __init__(self, delay=0.1):
        self.delay, self.calls, self.lock = delay, [], threading.Lock()

    def predict(self, images, threshold=None, batch_size=None):
        images = images if isinstance(images, list) else [images]
        with self.lock:
            self.calls.append(len(images))
        time.sleep(self.delay)  # the forward pass: requests pile up meanwhile
        for image in images:
            kept = fake_instances(image).filter(0.0 if threshold is None else threshold)
            yield InstanceSegResult(None, kept, ["a", "b"], image=image)


class Gate:
    """A pipeline whose predictions wait until the test opens the gate."""

    def __init__(self):
        self.open = threading.Event()

    def predict(self, image, threshold=None):
        self.open.wait(30)
        yield InstanceSegResult(None, Instances.empty(image.shape[:2]), [], image=image)


def post(url, body):
    response = requests.post(url + "/instance-segmentation", json=body, timeout=60)
    return response.status_code, response.json()


def metric(text, name, **labels):
    want = ",".join(f'{k}="{v}"' for k, v in labels.items())
    pattern = re.escape(name) + (r"\{" + re.escape(want) + r"\}" if want else "") + r" ([0-9.e+-]+)"
    found = re.search(pattern, text)
    return float(found.group(1)) if found else None


def test_liveness_and_readiness_while_the_model_loads():
    release = threading.Event()

    def load():
        release.wait(30)
        return BatchingPipeline(delay=0)

    server = BackgroundServer(load).start(wait_ready=False)
    try:
        assert requests.get(server.url + "/health/live", timeout=5).status_code == 200
        for path in ("/health", "/health/ready"):  # PaddleX's /health: 200 only once requests are served
            ready = requests.get(server.url + path, timeout=5)
            assert ready.status_code == 503 and ready.json()["errorCode"] == 503
            assert "loading the model" in ready.json()["errorMsg"]
        status, body = post(server.url, {"image": png_b64(0)})
        assert status == 503 and "not ready" in body["errorMsg"]
        release.set()
        deadline = time.monotonic() + 20
        while requests.get(server.url + "/health/ready", timeout=5).status_code != 200:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert server.app.state.worker.pipeline.calls == [1]  # the warm-up prediction came before "ready"
        health = requests.get(server.url + "/health", timeout=5)
        assert health.status_code == 200 and health.json()["result"] == {"status": "healthy"}
        status, body = post(server.url, {"image": png_b64(0)})
        assert status == 200 and len(body["result"]["instances"]) == 3
    finally:
        release.set()
        server.stop()


def test_a_model_that_cannot_load_stops_serve():
    def load():
        raise UserError("no such model folder: /nowhere")

    started = time.monotonic()
    with pytest.raises(UserError, match="no such model folder"):
        serve(load, port=free_port(), log_level="warning")
    assert time.monotonic() - started < 20


def test_metrics_count_requests_latency_and_queue_depth():
    gate = Gate()
    with BackgroundServer(gate, warmup=False) as server:
        text = requests.get(server.url + "/metrics", timeout=5).text
        assert metric(text, "tutorial_lib_model_ready") == 1 and metric(text, "tutorial_lib_queue_depth") == 0
        with ThreadPoolExecutor(3) as pool:
            pending = [pool.submit(post, server.url, {"image": png_b64(i), "visualize": False}) for i in range(3)]
            deadline = time.monotonic() + 20
            while metric(requests.get(server.url + "/metrics", timeout=5).text, "tutorial_lib_queue_depth") != 2:
                assert time.monotonic() < deadline, "one request runs, two wait"
                time.sleep(0.05)
            gate.open.set()
            assert [f.result()[0] for f in pending] == [200, 200, 200]
        post(server.url, {"image": "not base64 !!"})
        requests.get(server.url + "/no/such/route", timeout=5)
        text = requests.get(server.url + "/metrics", timeout=5).text
    route = "/instance-segmentation"
    assert metric(text, "tutorial_lib_requests_total", route=route, status="200") == 3
    assert metric(text, "tutorial_lib_requests_total", route=route, status="400") == 1
    assert metric(text, "tutorial_lib_requests_total", route="other", status="404") == 1
    assert metric(text, "tutorial_lib_request_duration_seconds_count", route=route) == 4
    assert metric(text, "tutorial_lib_request_duration_seconds_bucket", le="+Inf", route=route) == 4
    assert metric(text, "tutorial_lib_queue_depth") == 0
    assert metric(text, "process_resident_memory_bytes") > 0


def test_requests_over_the_in_flight_limit_get_503():
    gate = Gate()
    with BackgroundServer(gate, limits=Limits(max_in_flight=2), warmup=False) as server:
        with ThreadPoolExecutor(2) as pool:
            held = [pool.submit(post, server.url, {"image": png_b64(i)}) for i in range(2)]
            deadline = time.monotonic() + 20
            while server.app.state.server.in_flight < 2:
                assert time.monotonic() < deadline
                time.sleep(0.02)
            status, body = post(server.url, {"image": png_b64(9)})
            assert status == 503 and "server busy" in body["errorMsg"]
            gate.open.set()
            assert [f.result()[0] for f in held] == [200, 200]
        assert post(server.url, {"image": png_b64(9)})[0] == 200  # the limit frees up again


def test_micro_batching_gives_each_request_its_unbatched_answer():
    bodies = [{"image": png_b64(i, 48 + 8 * (i % 3), 32 + 4 * (i % 4)), "visualize": False,
               "threshold": [None, 0.4, 0.6][i % 3]} for i in range(24)]

    def answers(**options):
        pipeline = BatchingPipeline()
        with BackgroundServer(pipeline, warmup=False, **options) as server:
            with ThreadPoolExecutor(8) as pool:
                replies = list(pool.map(lambda body: post(server.url, body), bodies))
        assert all(status == 200 for status, _ in replies)
        return [body["result"] for _, body in replies], pipeline.calls

    plain, plain_calls = answers()
    batched, batched_calls = answers(batching=Batching(max_batch_size=4, max_wait_ms=50))
    assert plain_calls == [1] * 24
    assert sum(batched_calls) == 24 and max(batched_calls) > 1 and max(batched_calls) <= 4
    assert batched == plain
    assert {len(r["instances"]) for r in plain} == {1, 2, 3}  # each request's own threshold was applied


class SameSizePipeline(BatchingPipeline):
    """A model whose forward pass takes a batch of images of one size only (Mask-RT-DETR: ``batch_same_size``)."""

    class predictor:  # noqa: N801 -- what the worker reads: the model's inference.yml
        info = {"batch_size_limit": None, "batch_same_size": True}

    def predict(self, images, threshold=None, batch_size=None):
        images = images if isinstance(images, list) else [images]
        assert len({image.shape for image in images}) == 1, [image.shape for image in images]
        return super().predict(images, threshold, batch_size)


def test_micro_batching_puts_only_same_size_requests_in_one_forward_pass():
    """Two image sizes, one threshold: a model that needs same-size batches gets one call per size, each with
    several requests, and every request its unbatched answer."""
    bodies = [{"image": png_b64(i, 48 if i % 2 else 40, 32), "visualize": False} for i in range(16)]

    def answers(**options):
        pipeline = SameSizePipeline()
        with BackgroundServer(pipeline, warmup=False, **options) as server:
            with ThreadPoolExecutor(8) as pool:
                replies = list(pool.map(lambda body: post(server.url, body), bodies))
        assert all(status == 200 for status, _ in replies), replies[:2]
        return [body["result"] for _, body in replies], pipeline.calls

    plain, plain_calls = answers()
    batched, batched_calls = answers(batching=Batching(max_batch_size=4, max_wait_ms=50))
    assert plain_calls == [1] * 16
    assert sum(batched_calls) == 16 and max(batched_calls) > 1 and max(batched_calls) <= 4  # (sizes asserted above)
    assert batched == plain


def test_the_worker_groups_a_batch_by_threshold_and_by_size_when_the_model_needs_it():
    from tutorial_lib.serving.worker import ModelWorker, _Job

    jobs = [_Job(np.zeros(shape, np.uint8), threshold) for shape, threshold in
            [((32, 40, 3), None), ((32, 48, 3), None), ((32, 40, 3), 0.5), ((32, 40, 3), None), ((32, 48, 3), None)]]
    worker = ModelWorker(BatchingPipeline(), warmup=False)
    assert [[jobs.index(j) for j in g] for g in worker._groups(jobs)] == [[0, 1, 3, 4], [2]]
    worker.same_size = True  # what _main reads from a SameSizePipeline's inference.yml
    assert [[jobs.index(j) for j in g] for g in worker._groups(jobs)] == [[0, 3], [1, 4], [2]]
    from tutorial_lib.serving.worker import forward_batch_same_size

    assert forward_batch_same_size(SameSizePipeline()) and not forward_batch_same_size(BatchingPipeline())
