"""Bad requests to the HTTP server: each gets a 4xx in PaddleX's error schema and the server keeps serving."""
import base64
import io
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from tutorial_lib.serving import Limits, UrlPolicy, create_app, free_port


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
    # loopback URLs are refused by default (tests/serving/test_serving_urls.py); this server may fetch the local
    # test server.
    # No warm-up: it would call the pipeline, and a failed warm-up leaves the server not ready (/health 503)
    return TestClient(create_app(NeverCalled(), limits, urls=UrlPolicy(allow=["127.0.0.1"]), warmup=False))


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
    response = client.get("/health")
    body = response.json()
    assert response.status_code == 200 and body["errorCode"] == 0 and body["result"] == {"status": "healthy"}


def test_health_is_503_while_the_warm_up_failed():
    """PaddleX's /health means "requests are served": a model that could not be warmed up is not ready."""
    client = TestClient(create_app(NeverCalled()))
    worker, deadline = client.app.state.worker.start(), time.monotonic() + 10
    while worker.error is None:  # the warm-up runs on the model thread
        assert time.monotonic() < deadline
        time.sleep(0.01)
    for path in ("/health", "/health/ready"):
        response = client.get(path)
        assert response.status_code == 503 and response.headers["retry-after"] == "1"
        assert response.json()["errorCode"] == 503 and "could not be warmed up" in response.json()["errorMsg"]
    assert client.get("/health/live").status_code == 200


def png_header_only(width, height):
    """A PNG whose header declares ``width`` x ``height`` with almost no pixel data (a decompression bomb)."""
    import struct
    import zlib

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + \
        chunk(b"IEND", b"")


def jpeg_header_only(width, height):
    """A real JPEG whose frame header (SOF0) is rewritten to declare ``width`` x ``height``."""
    import struct

    data = bytearray(jpeg_bytes())
    sof = data.index(b"\xff\xc0")
    data[sof + 5:sof + 9] = struct.pack(">HH", height, width)
    return bytes(data)


@pytest.mark.parametrize("name, data", [
    ("PNG beyond PIL's own bomb limit", png_header_only(100_000, 100_000)),
    ("PNG under PIL's limit, over the server's", png_header_only(9_000, 9_000)),
    ("JPEG declaring 65535 x 65535", jpeg_header_only(65_535, 65_535)),
])
def test_enormous_declared_size_is_413_not_500(name, data):
    """Used to be HTTP 500 (PIL's DecompressionBombError escaped); the header is checked before decoding."""
    client = TestClient(create_app(NeverCalled()), raise_server_exceptions=False)  # default limits
    assert len(data) < 5000
    response = client.post("/instance-segmentation", json={"image": b64(data)})
    assert response.status_code == 413, response.text
    body = response.json()
    assert body["errorCode"] == 413 and "pixels" in body["errorMsg"] and body["logId"]


def test_body_limit_holds_without_a_content_length(client):
    def chunks():  # chunked transfer: the server cannot trust a declared length
        yield b'{"image": "'
        for _ in range(30):
            yield b"A" * 10_000
        yield b'"}'

    response = client.post("/instance-segmentation", content=chunks(), headers={"content-type": "application/json"})
    assert response.status_code == 413 and "larger than 200000 bytes" in response.json()["errorMsg"]


def test_openapi_page_shows_paddlex_schema(client):
    spec = client.get("/openapi.json").json()
    schemas = spec["components"]["schemas"]
    assert set(schemas["InferRequest"]["properties"]) == {"image", "threshold", "visualize", "polygons"}
    assert schemas["InferRequest"]["required"] == ["image"]
    assert set(schemas["Instance"]["properties"]) >= {"bbox", "categoryId", "categoryName", "score", "mask"}
    assert set(schemas["Mask"]["properties"]) == {"rleResult", "size"}
    assert set(schemas["ErrorResponse"]["properties"]) == {"logId", "errorCode", "errorMsg"}
    infer = spec["paths"]["/instance-segmentation"]["post"]
    assert infer["operationId"] == "infer" and {"400", "413", "422", "503"} <= set(infer["responses"])
    assert client.get("/docs").status_code == 200


def test_unexpected_failure_is_500_in_the_envelope():
    class Broken:
        def predict(self, image, threshold=None):
            raise RuntimeError("boom")

    client = TestClient(create_app(Broken(), warmup=False), raise_server_exceptions=False)
    response = client.post("/instance-segmentation", json={"image": b64(png_bytes())})
    body = response.json()
    assert response.status_code == 500 and body["errorCode"] == 500 and "RuntimeError" in body["errorMsg"]
    assert client.get("/health").status_code == 200
