"""Graceful shutdown with real signals on real server processes on 127.0.0.1.

``SIGTERM`` (Kubernetes, systemd, Docker) and ``SIGINT`` (Ctrl-C) sent to ``python -m tutorial_lib --serve`` while
four requests are in flight: all four get their answers (the same as when sent one at a time), a request sent after
the signal gets 503 or finds the port closed, and the process exits 0 without Paddle's "FatalError: Termination
signal" abort (which used to cut all four). Also: ``/health`` answers 503 until the model is ready; while draining,
readiness and new requests get 503 and liveness stays 200; the handlers survive ``import paddle`` while the model is
still loading; a second signal, or the drain timeout, stops at once.
"""
import base64
import os
import re
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import cv2
import numpy as np
import pytest
import requests
import yaml

from conftest import REPO
from tutorial_lib.serving import free_port

LOW = 0.05  # the tiny test model is barely trained: a low threshold gives it instances


@pytest.fixture()
def launch(tmp_path):
    """``launch(*args)`` -> (process, url): ``python *args`` (which must listen on ``url``), its output in
    ``tmp_path/server.log``; killed at the end of the test if still running."""
    started = []

    def run(*args, port):
        log = open(tmp_path / "server.log", "w")
        process = subprocess.Popen([sys.executable, *map(str, args)], stdout=log, stderr=subprocess.STDOUT,
                                   cwd=tmp_path, env=dict(os.environ, PYTHONPATH=str(REPO)))
        started.append((process, log))
        return process, f"http://127.0.0.1:{port}"

    yield run
    for process, log in started:
        if process.poll() is None:
            process.kill()
            process.wait(30)
        log.close()


def assert_clean_exit(process, tmp_path, timeout_s=60):
    """Exit status 0, and none of Paddle's fatal-signal trace in the output."""
    assert process.wait(timeout_s) == 0, (tmp_path / "server.log").read_text()[-3000:]
    text = (tmp_path / "server.log").read_text()
    assert "FatalError" not in text and "Termination signal" not in text, text[-3000:]


def get(url):
    """(status, JSON body) of a GET, or ("refused", None) when nothing listens."""
    try:
        response = requests.get(url, timeout=5)
    except requests.ConnectionError:
        return "refused", None
    return response.status_code, response.json()


def post(url, body):
    """(status, JSON body or None, when the answer came); status "refused" when the port is closed or the connection
    was cut."""
    try:
        response = requests.post(url + "/instance-segmentation", json=body, timeout=180)
    except requests.ConnectionError:
        return "refused", None, time.monotonic()
    try:
        return response.status_code, response.json(), time.monotonic()
    except ValueError:
        return response.status_code, None, time.monotonic()


def wait_for(condition, process, what, timeout_s=120):
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert process.poll() is None, f"the server exited ({process.returncode}) before {what}"
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def health_until_ready(process, url):
    """Poll ``GET /health`` until it answers 200; every (status, body) seen."""
    seen = [get(url + "/health")]
    while seen[-1][0] != 200:
        assert process.poll() is None, f"the server exited ({process.returncode}) before it was ready"
        assert len(seen) < 2400, "the server did not get ready in 2 minutes"
        time.sleep(0.05)
        seen.append(get(url + "/health"))
    return seen


def queue_depth(url):
    text = requests.get(url + "/metrics", timeout=5).text
    return float(re.search(r"^tutorial_lib_queue_depth ([0-9.]+)$", text, re.M).group(1))


def png_b64(image):
    return base64.b64encode(cv2.imencode(".png", np.ascontiguousarray(image))[1].tobytes()).decode()


def pipeline_config(model_dir, folder):
    import tutorial_lib as tl
    from tutorial_lib.quickstart import exported_model_name

    path = tl.get_pipeline_config("instance_segmentation", folder)
    config = yaml.safe_load(path.read_text())
    config["SubModules"]["InstanceSegmentation"].update(model_dir=str(model_dir),
                                                        model_name=exported_model_name(model_dir))
    path.write_text(yaml.safe_dump(config))
    return path


def scene_bodies(model_dir):
    """Four different images (the busiest training scene, flipped three ways), upscaled 4x: the model sees what it
    knows, and pasting the masks at full size makes each request slow enough to still be in flight."""
    from tutorial_lib.quickstart import training_scene

    scene = cv2.imread(str(training_scene(model_dir)))
    scene = cv2.resize(scene, None, fx=4, fy=4, interpolation=cv2.INTER_NEAREST)
    return [{"image": png_b64(image), "threshold": LOW, "visualize": False}
            for image in (scene, scene[::-1], scene[:, ::-1], scene[::-1, ::-1])]


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_signal_lets_the_requests_in_flight_finish(quickstart_model, tmp_path, launch, signum):
    model_dir, port = quickstart_model[0], free_port()
    process, url = launch("-m", "tutorial_lib", "--serve", "--pipeline", pipeline_config(model_dir, tmp_path),
                          "--port", port, port=port)
    seen = health_until_ready(process, url)
    loading = [body for status, body in seen if status == 503]  # PaddleX's /health: 503 until requests are served
    assert loading and all(body["errorCode"] == 503 and "not ready" in body["errorMsg"] for body in loading)
    assert {status for status, _ in seen} <= {"refused", 503, 200}

    bodies = scene_bodies(model_dir)
    expected = [post(url, body)[:2] for body in bodies]  # one at a time
    assert all(status == 200 and len(body["result"]["instances"]) > 0 for status, body in expected)
    with ThreadPoolExecutor(4) as pool:
        pending = [pool.submit(post, url, body) for body in bodies]
        wait_for(lambda: queue_depth(url) >= 3, process, "one request in the model and three waiting")
        process.send_signal(signum)
        signalled = time.monotonic()
        late, health = post(url, bodies[0]), get(url + "/health")
        answers = [future.result() for future in pending]
    assert_clean_exit(process, tmp_path)

    assert [(status, body["result"]) for status, body, _ in answers] == \
        [(200, body["result"]) for _, body in expected]
    assert sum(when > signalled for _, _, when in answers) >= 3  # they were in flight when the signal came
    assert late[0] == "refused" or (late[0] == 503 and late[1]["errorCode"] == 503), late[:2]
    assert health[0] in ("refused", 503)


def test_draining_turns_readiness_and_new_requests_503_and_keeps_liveness():
    from fastapi.testclient import TestClient

    from tutorial_lib.predict import InstanceSegResult
    from tutorial_lib.serving import create_app
    from tutorial_lib.structures import Instances

    class Empty:
        def predict(self, image, threshold=None):
            yield InstanceSegResult(None, Instances.empty(image.shape[:2]), [], image=image)

    client = TestClient(create_app(Empty(), warmup=False))
    body = {"image": png_b64(np.zeros((16, 16, 3), np.uint8))}

    def answers():
        return client.get("/health"), client.get("/health/ready"), client.post("/instance-segmentation", json=body)

    assert [response.status_code for response in answers()] == [200, 200, 200]
    client.app.state.server.draining = True  # what the first SIGTERM / SIGINT does
    for response in answers():
        assert response.status_code == 503 and response.headers["retry-after"] == "1"
        assert response.json()["errorCode"] == 503 and "shutting down" in response.json()["errorMsg"]
    assert client.get("/health/live").status_code == 200


LOADS_SLOWLY = """
import pathlib, sys, threading
from tutorial_lib.serving import serve

def load():  # paddle's import replaces the SIGTERM handler; then a model that takes long to load
    from tutorial_lib.paddle_env import import_paddle
    import_paddle()
    pathlib.Path("paddle_imported").touch()
    threading.Event().wait()

serve(load, port=int(sys.argv[1]), log_level="warning")
"""


def test_sigterm_while_the_model_loads_after_paddle_was_imported(tmp_path, launch):
    port = free_port()
    process, url = launch("-c", LOADS_SLOWLY, port, port=port)
    wait_for((tmp_path / "paddle_imported").exists, process, "paddle imported by the model thread")
    time.sleep(0.5)  # the server puts its handlers back every 0.1 s while the model loads
    status, body = get(url + "/health")
    assert status == 503 and "loading the model" in body["errorMsg"]
    assert get(url + "/health/live")[0] == 200
    process.send_signal(signal.SIGTERM)
    assert_clean_exit(process, tmp_path, timeout_s=30)


SLOW_MODEL = """
import sys, time
from tutorial_lib.predict import InstanceSegResult
from tutorial_lib.serving import serve
from tutorial_lib.structures import Instances

class Slow:
    calls = 0

    def predict(self, image, threshold=None):
        Slow.calls += 1
        if Slow.calls > 1:  # the warm-up is quick, a request takes two minutes
            time.sleep(120)
        yield InstanceSegResult(None, Instances.empty(image.shape[:2]), [], image=image)

serve(Slow(), port=int(sys.argv[1]), log_level="warning", drain_timeout_s=float(sys.argv[2]))
"""


@pytest.mark.parametrize("drain_timeout_s, signals", [(600, 2), (1, 1)], ids=["second signal", "drain timeout"])
def test_a_second_signal_or_the_drain_timeout_stops_at_once(tmp_path, launch, drain_timeout_s, signals):
    port = free_port()
    process, url = launch("-c", SLOW_MODEL, port, drain_timeout_s, port=port)
    wait_for(lambda: get(url + "/health")[0] == 200, process, "GET /health answers 200")
    body = {"image": png_b64(np.zeros((16, 16, 3), np.uint8))}
    with ThreadPoolExecutor(2) as pool:
        pending = [pool.submit(post, url, body) for _ in range(2)]
        wait_for(lambda: queue_depth(url) >= 1, process, "one request in the model and one waiting")
        process.send_signal(signal.SIGTERM)
        time.sleep(0.5)
        assert process.poll() is None  # draining: it waits for the requests in flight
        stopping = time.monotonic()
        if signals == 2:
            process.send_signal(signal.SIGTERM)
        assert_clean_exit(process, tmp_path, timeout_s=30)
        assert time.monotonic() - stopping < 10
        assert all(future.result()[0] != 200 for future in pending)  # cut: nobody waits two minutes
