"""Bad requests to the HTTP server: each gets a 4xx in PaddleX's error schema and the server keeps serving."""
import base64
import io
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from tutorial_lib.serving import Limits, create_app, free_port


class NeverCalled:
    def predict(self, image, threshold=None):
        raise AssertionError("the pipeline must not run for a bad request")


def png_bytes(width=32, height=24):
    buf = io.BytesIO()
    Image.fromarray(np.full((height, width, 3), 128, np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


def jpeg_bytes():
    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(buf, "JPEG")
    return buf.getvalue()


def b64(data):
    return base64.b64encode(data).decode()


@pytest.fixture(scope="module")
def image_server():
    """Serves /ok.png and answers 404 elsewhere, on 127.0.0.1."""
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            if self.path == "/ok.png":
                body = png_bytes()
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
            else:
                self.send_error(404)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


@pytest.fixture(scope="module")
def client():
    limits = Limits(max_body_bytes=200_000, max_image_bytes=100_000, max_pixels=100 * 100, url_timeout_s=2)
    return TestClient(create_app(NeverCalled(), limits))


@pytest.mark.parametrize("name, body, status, message", [
    ("missing image", {"threshold": 0.5}, 400, "missing field 'image'"),
    ("invalid base64", {"image": "not base64 !!"}, 400, "neither valid base64"),
    ("not an image", {"image": b64(b"hello world, not pixels")}, 400, "not an image"),
    ("truncated image", {"image": b64(jpeg_bytes()[:300])}, 400, "truncated"),
    ("too many pixels", {"image": b64(png_bytes(200, 200))}, 413, "pixels"),
    ("image wrong type", {"image": 42}, 400, "'image' must be a string"),
    ("threshold wrong type", {"image": b64(png_bytes()), "threshold": "high"}, 400, "must be a number"),
    ("threshold boolean", {"image": b64(png_bytes()), "threshold": True}, 400, "must be a number"),
    ("threshold out of range", {"image": b64(png_bytes()), "threshold": 1.5}, 400, r"[0, 1]"),
    ("visualize wrong type", {"image": b64(png_bytes()), "visualize": "yes"}, 400, "'visualize' must be"),
    ("unknown field", {"image": b64(png_bytes()), "thresh": 0.5}, 400, "unknown field"),
    ("body not an object", [1, 2], 400, "JSON object"),
    ("empty image", {"image": ""}, 400, "empty"),
])
def test_bad_requests(client, name, body, status, message):
    response = client.post("/instance-segmentation", json=body)
    assert response.status_code == status, response.text
    payload = response.json()
    assert payload["errorCode"] == status and message in payload["errorMsg"] and payload["logId"]
    assert client.get("/health").json()["errorCode"] == 0  # still serving


def test_invalid_json_oversized_body_and_unknown_route(client):
    response = client.post("/instance-segmentation", content=b"{not json", headers={"content-type": "application/json"})
    assert response.status_code == 400 and "not valid JSON" in response.json()["errorMsg"]
    response = client.post("/instance-segmentation", json={"image": "A" * 300_000})
    assert response.status_code == 413 and response.json()["errorCode"] == 413
    response = client.post("/segment", json={"image": "x"})
    assert response.status_code == 404 and response.json()["errorCode"] == 404
    response = client.get("/instance-segmentation")
    assert response.status_code == 405 and response.json()["errorCode"] == 405


def test_url_errors(client, image_server):
    response = client.post("/instance-segmentation", json={"image": f"http://127.0.0.1:{free_port()}/x.png"})
    assert response.status_code == 422 and "cannot fetch image URL" in response.json()["errorMsg"]
    response = client.post("/instance-segmentation", json={"image": image_server + "/missing.png"})
    assert response.status_code == 422 and "HTTP 404" in response.json()["errorMsg"]


def test_truncated_image_is_refused_even_when_pil_was_made_tolerant(client):
    from PIL import ImageFile

    ImageFile.LOAD_TRUNCATED_IMAGES = True  # what importing paddledet's trainer does to the whole process
    half = jpeg_bytes()[:1546]  # half a JPEG: a tolerant PIL would "decode" it with grey rows
    try:
        response = client.post("/instance-segmentation", json={"image": b64(half)})
    finally:
        ImageFile.LOAD_TRUNCATED_IMAGES = False
    assert response.status_code == 400 and "truncated" in response.json()["errorMsg"]


def test_health(client):
    body = client.get("/health").json()
    assert body["errorCode"] == 0 and body["result"] == {"status": "healthy"}
