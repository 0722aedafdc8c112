"""HTTP serving of an instance-segmentation pipeline (FastAPI), with PaddleX's request/response schema.

    POST /instance-segmentation  {"image": "<base64 or http(s) URL>", "threshold": 0.5, "visualize": true}
      -> {"logId", "errorCode": 0, "errorMsg": "Success",
          "result": {"instances": [{"bbox", "categoryId", "categoryName", "score",
                                    "mask": {"rleResult", "size"}}], "image": "<base64 JPEG overlay> or null"}}
    GET /health

``threshold`` and ``visualize`` are optional; ``visualize`` defaults to the server's setting (``create_app(...,
visualize=True)``); ``false`` skips drawing and encoding the overlay (``"image": null``), for clients that only
need the instances.

Every bad request gets a 4xx with ``errorCode`` (the HTTP status) and ``errorMsg``; the server keeps serving.
"""
import base64
import binascii
import io
import json
import threading
import uuid
from dataclasses import dataclass

import numpy as np

from .errors import UserError

ROUTE = "/instance-segmentation"


@dataclass
class Limits:
    max_body_bytes: int = 20 * 1024 * 1024
    max_image_bytes: int = 15 * 1024 * 1024
    max_pixels: int = 40_000_000
    url_timeout_s: float = 10.0


class RequestError(Exception):
    def __init__(self, status, message):
        super().__init__(message)
        self.status, self.message = status, message


def _fetch_url(url, limits):
    import requests

    try:
        with requests.get(url, timeout=limits.url_timeout_s, stream=True) as response:
            if response.status_code != 200:
                raise RequestError(422, f"image URL answered HTTP {response.status_code}: {url}")
            data = bytearray()
            for chunk in response.iter_content(65536):
                data.extend(chunk)
                if len(data) > limits.max_image_bytes:
                    raise RequestError(413, f"image at URL is larger than {limits.max_image_bytes} bytes")
            return bytes(data)
    except requests.RequestException as exc:
        raise RequestError(422, f"cannot fetch image URL {url}: {type(exc).__name__}") from None


def _image_bytes(value, limits):
    if value.startswith(("http://", "https://")):
        return _fetch_url(value, limits)
    if value.startswith("data:") and "," in value:
        value = value.split(",", 1)[1]
    if len(value) * 3 // 4 > limits.max_image_bytes:
        raise RequestError(413, f"image is larger than {limits.max_image_bytes} bytes")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise RequestError(400, "'image' is neither valid base64 nor an http(s) URL") from None


def decode_image(data, limits):
    """Bytes -> RGB uint8 array; rejects non-images, truncated files and images over the pixel limit."""
    from PIL import Image, UnidentifiedImageError

    from .data.images import strict_decoding

    if not data:
        raise RequestError(400, "'image' is empty")
    try:
        image = Image.open(io.BytesIO(data))
        if image.width * image.height > limits.max_pixels:
            raise RequestError(413, f"image has {image.width}x{image.height} pixels, more than the limit "
                                    f"{limits.max_pixels}; use sliced inference for large scenes")
        with strict_decoding():
            image.load()
    except RequestError:
        raise
    except UnidentifiedImageError:
        raise RequestError(400, "'image' bytes are not an image format this server reads") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise RequestError(400, f"'image' could not be decoded (truncated or corrupt): {exc}") from None
    return np.asarray(image.convert("RGB"))


FIELDS = ("image", "threshold", "visualize")


def parse_request(payload, limits):
    """Validate the JSON body; return ``(rgb_array, threshold, visualize)`` (``None`` where not given)."""
    if not isinstance(payload, dict):
        raise RequestError(400, "the request body must be a JSON object with an 'image' field")
    unknown = sorted(set(payload) - set(FIELDS))
    if unknown:
        raise RequestError(400, f"unknown field(s) {unknown}; allowed: {', '.join(FIELDS)}")
    if "image" not in payload:
        raise RequestError(400, "missing field 'image' (base64-encoded image or http(s) URL)")
    if not isinstance(payload["image"], str):
        raise RequestError(400, f"'image' must be a string, got {type(payload['image']).__name__}")
    threshold = payload.get("threshold")
    if threshold is not None:
        if isinstance(threshold, bool) or not isinstance(threshold, (int, float)):
            raise RequestError(400, f"'threshold' must be a number in [0, 1], got {threshold!r}")
        if not 0 <= threshold <= 1:
            raise RequestError(400, f"'threshold' must lie in [0, 1], got {threshold}")
    visualize = payload.get("visualize")
    if visualize is not None and not isinstance(visualize, bool):
        raise RequestError(400, f"'visualize' must be true, false or null, got {visualize!r}")
    return decode_image(_image_bytes(payload["image"], limits), limits), threshold, visualize


def result_payload(result, overlay=True):
    """PaddleX's serving ``result`` for one prediction result."""
    import cv2

    rles = result.json["res"]["masks"]
    instances = [{"bbox": [float(v) for v in box["coordinate"]], "categoryId": int(box["cls_id"]),
                  "categoryName": box["label"], "score": float(box["score"]),
                  "mask": {"rleResult": rle["counts"], "size": list(rle["size"])}}
                 for box, rle in zip(result.boxes, rles)]
    payload = {"instances": instances, "image": None}
    if overlay:
        ok, buf = cv2.imencode(".jpg", result.visualize()[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, 90])
        payload["image"] = base64.b64encode(buf.tobytes()).decode("ascii")
    return payload


def create_app(pipeline, limits=None, visualize=True):
    """A FastAPI app serving ``pipeline`` (anything with ``predict(array, threshold=...)`` yielding results).

    Only the forward pass holds the lock (one Paddle predictor); decoding the request, encoding masks as RLE and
    drawing the overlay run in worker threads beside it.
    """
    from fastapi import FastAPI, Request
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse
    from starlette.exceptions import HTTPException as StarletteHTTPException

    limits = limits or Limits()
    app = FastAPI(title="tutorial_lib instance segmentation", version="1")
    lock = threading.Lock()  # one Paddle predictor: one inference at a time

    def reply(status, message, result=None):
        body = {"logId": str(uuid.uuid4()), "errorCode": 0 if status == 200 else status, "errorMsg": message}
        if result is not None:
            body["result"] = result
        return JSONResponse(body, status_code=status)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request, exc):
        return reply(exc.status_code, str(exc.detail))

    @app.exception_handler(RequestValidationError)
    async def validation_error(request, exc):
        return reply(422, "invalid request: " + "; ".join(e.get("msg", "") for e in exc.errors()))

    @app.get("/health")
    def health():
        return reply(200, "Healthy", {"status": "healthy"})

    @app.post(ROUTE)
    async def segment(request: Request):
        declared = request.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > limits.max_body_bytes:
            return reply(413, f"request body is larger than {limits.max_body_bytes} bytes")
        body = bytearray()
        async for chunk in request.stream():
            body.extend(chunk)
            if len(body) > limits.max_body_bytes:
                return reply(413, f"request body is larger than {limits.max_body_bytes} bytes")
        try:
            payload = json.loads(body)
        except ValueError:
            return reply(400, "the request body is not valid JSON")
        from starlette.concurrency import run_in_threadpool

        try:
            image, threshold, draw = await run_in_threadpool(parse_request, payload, limits)
            result = await run_in_threadpool(_predict_locked, pipeline, lock, image, threshold)
        except RequestError as exc:
            return reply(exc.status, exc.message)
        except UserError as exc:
            return reply(400, str(exc))
        body = await run_in_threadpool(result_payload, result, visualize if draw is None else draw)
        return reply(200, "Success", body)

    return app


def _predict_locked(pipeline, lock, image, threshold):
    with lock:
        return next(iter(pipeline.predict(image, threshold=threshold)))


def serve(pipeline, host="127.0.0.1", port=8080, limits=None, visualize=True):
    import uvicorn

    uvicorn.run(create_app(pipeline, limits, visualize), host=host, port=port, log_level="info")


def free_port(host="127.0.0.1"):
    """A TCP port nobody listens on right now."""
    import socket

    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


class BackgroundServer:
    """The HTTP server in a background thread of this process, e.g. in a notebook::

        with BackgroundServer(pipeline) as server:
            Client(server.url).predict("scene.png")

    ``port=0`` takes a free port. ``stop()`` (or leaving the ``with`` block) shuts it down and frees the port.
    """

    def __init__(self, pipeline, host="127.0.0.1", port=0, limits=None, visualize=True, log_level="warning"):
        import uvicorn

        port = port or free_port(host)
        self.url = f"http://{host}:{port}"
        config = uvicorn.Config(create_app(pipeline, limits, visualize), host=host, port=port, log_level=log_level)
        self._server = uvicorn.Server(config)
        self._thread = None

    def start(self, timeout_s=30):
        import time

        self._thread = threading.Thread(target=self._server.run, name="tutorial_lib-serving", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout_s
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise UserError(f"the server did not start on {self.url} (port taken?)")
            time.sleep(0.05)
        return self

    def stop(self):
        self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(30)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


class Client:
    """A small Python client: ``Client("http://127.0.0.1:8080").predict("scene.png", threshold=0.5)``."""

    def __init__(self, base_url="http://127.0.0.1:8080", timeout=60):
        self.base_url, self.timeout = base_url.rstrip("/"), timeout

    def predict(self, image, threshold=None, visualize=None):
        """``image``: a file path, raw bytes or an http(s) URL; returns the response's ``result``
        (``visualize=False``: no overlay image, ``result["image"]`` is ``None``)."""
        import requests

        if isinstance(image, bytes):
            value = base64.b64encode(image).decode("ascii")
        elif str(image).startswith(("http://", "https://")):
            value = str(image)
        else:
            with open(image, "rb") as f:
                value = base64.b64encode(f.read()).decode("ascii")
        payload = {"image": value, "threshold": threshold, "visualize": visualize}
        payload = {k: v for k, v in payload.items() if v is not None}
        response = requests.post(self.base_url + ROUTE, json=payload, timeout=self.timeout)
        body = response.json()
        if body.get("errorCode") != 0:
            raise UserError(f"server answered {response.status_code}: {body.get('errorMsg')}")
        return body["result"]
