"""The FastAPI app: PaddleX's instance-segmentation operation plus health, readiness, metrics and GeoTIFF input.

    POST /instance-segmentation          PaddleX's infer: {"image", "threshold"?, "visualize"?, "polygons"?}
    POST /instance-segmentation/geotiff  GeoTIFF (base64 or URL) -> GeoJSON, sliced inference
    GET  /health                         PaddleX's health check (the process answers)
    GET  /health/live                    liveness: the process answers (also while the model loads)
    GET  /health/ready                   readiness: 200 once the model is loaded and warmed up, 503 before
    GET  /metrics                        Prometheus
    GET  /docs, /openapi.json            the request and response schema

Only the model thread (:class:`.worker.ModelWorker`) runs the model; reading the request, decoding the image,
encoding the masks and drawing run in a small thread pool beside it (``decode_threads``). Memory under load is
bounded by the limits: requests in flight, images decoded and waiting for the model, pixels per image.
"""
import asyncio
import contextlib
import json
import os
import tempfile
import threading
import uuid

from ..errors import UserError
from .errors import RequestError
from .images import decode_image, image_bytes
from .limits import Limits, UrlPolicy
from .payload import result_payload
from .schema import (ERROR_RESPONSES, GEOTIFF_ENDPOINT, INFER_ENDPOINT, GeoTiffRequest, GeoTiffResult,
                     HealthResult, InferRequest, InferResult, ResultResponse, validation_message)
from .urls import UrlGuard
from .worker import ModelWorker

ROUTE = INFER_ENDPOINT
HEALTH_ROUTES = ("/health", "/health/live", "/health/ready", "/metrics")


def envelope(status, message, result=None):
    body = {"logId": str(uuid.uuid4()), "errorCode": 0 if status == 200 else status, "errorMsg": message}
    if result is not None:
        body["result"] = result
    return body


def _json_response(status, message, result=None, headers=None):
    from starlette.responses import Response

    return Response(json.dumps(envelope(status, message, result)), status_code=status, headers=headers,
                    media_type="application/json")


class _BodyLimit:
    """ASGI middleware: a request body over ``max_bytes`` gets 413 before the app parses any of it."""

    def __init__(self, app, max_bytes):
        self.app, self.max_bytes = app, max_bytes

    async def _refuse(self, scope, receive, send):
        await _json_response(413, f"request body is larger than {self.max_bytes} bytes")(scope, receive, send)

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["method"] not in ("POST", "PUT", "PATCH"):
            return await self.app(scope, receive, send)
        declared = dict(scope["headers"]).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.max_bytes:
            return await self._refuse(scope, receive, send)
        chunks, size, more = [], 0, True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return None
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                return await self._refuse(scope, receive, send)
            chunks.append(chunk)
            more = message.get("more_body", False)
        body, replayed = b"".join(chunks), False

        async def replay():
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        return await self.app(scope, replay, send)


class _Observe:
    """ASGI middleware: requests by route and status, latency to the response's first byte."""

    def __init__(self, app, metrics):
        self.app, self.metrics = app, metrics

    async def __call__(self, scope, receive, send):
        import time

        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started, seen = time.perf_counter(), []

        async def watch(message):
            if message["type"] == "http.response.start" and not seen:
                seen.append(message["status"])
                self.metrics.observe(scope["path"], message["status"], started)
            await send(message)

        self.metrics.in_flight.inc()
        try:
            await self.app(scope, receive, watch)
        except BaseException:
            if not seen:
                self.metrics.observe(scope["path"], 500, started)
            raise
        finally:
            self.metrics.in_flight.dec()


class _Server:
    """What the routes share: limits, the URL guard, the model worker, the decode thread pool."""

    def __init__(self, worker, limits, urls, visualize, decode_threads):
        self.worker, self.limits, self.visualize = worker, limits, visualize
        self.guard = UrlGuard(urls, limits)
        self.in_flight = 0  # touched on the event loop only
        self.decode_threads = decode_threads
        self._limiter = self._decoded = None

    async def in_thread(self, function, *args):
        import anyio

        if self._limiter is None:
            self._limiter = anyio.CapacityLimiter(self.decode_threads)
        return await anyio.to_thread.run_sync(function, *args, limiter=self._limiter)

    @contextlib.asynccontextmanager
    async def decoded(self):
        """A slot for one decoded image until the model is done with it (``Limits.max_decoded``)."""
        if self._decoded is None:
            self._decoded = asyncio.Semaphore(self.limits.max_decoded)
        async with self._decoded:
            yield

    @contextlib.asynccontextmanager
    async def admitted(self):
        """Refuse (503) while the model is not loaded or too many requests are in flight."""
        if not self.worker.loaded.is_set():
            self.worker.start()
            raise RequestError(503, f"not ready: {self.worker.status}; retry when GET /health/ready answers 200")
        if self.in_flight >= self.limits.max_in_flight:
            raise RequestError(503, f"server busy: {self.in_flight} requests in flight (limit "
                                    f"{self.limits.max_in_flight}); retry shortly")
        self.in_flight += 1
        try:
            yield
        finally:
            self.in_flight -= 1

    def read_image(self, value):
        return decode_image(image_bytes(value, self.limits, self.guard), self.limits)

    def respond(self, body):
        from starlette.responses import Response

        status = 200 if body["errorCode"] == 0 else body["errorCode"]
        headers = {"Retry-After": "1"} if status == 503 else None
        return Response(json.dumps(body), status_code=status, media_type="application/json", headers=headers)

    async def run(self, handler):
        """``handler()`` -> result dict, with every expected failure turned into PaddleX's envelope."""
        try:
            async with self.admitted():
                return self.respond(await handler())
        except RequestError as exc:
            return self.respond(envelope(exc.status, exc.message))
        except UserError as exc:
            return self.respond(envelope(400, str(exc)))


def create_app(pipeline, limits=None, visualize=True, urls=None, batching=None, warmup=True, decode_threads=4,
               worker=None):
    """A FastAPI app serving ``pipeline``.

    ``pipeline``: anything with ``predict(array, threshold=...)`` yielding results (an
    :class:`~tutorial_lib.pipeline.InstanceSegmentationPipeline`), or a function that returns one: then the
    server answers (``/health/live``) while it loads, and ``/health/ready`` turns 200 once it is loaded and
    warmed up. ``limits``: :class:`~.limits.Limits`; ``urls``: :class:`~.limits.UrlPolicy` (default: public
    addresses only); ``visualize``: the default of the request's ``visualize``; ``batching``:
    :class:`~.worker.Batching` to group concurrent requests (off by default); ``warmup``: one prediction on a
    synthetic image before reporting ready.
    """
    from fastapi import FastAPI
    from fastapi.exceptions import RequestValidationError
    from starlette.exceptions import HTTPException as StarletteHTTPException
    from starlette.responses import Response

    from .metrics import Metrics

    limits = limits or Limits()
    worker = worker or ModelWorker(pipeline, batching, warmup)
    server = _Server(worker, limits, urls or UrlPolicy(), visualize, decode_threads)
    metrics = Metrics(HEALTH_ROUTES + (INFER_ENDPOINT, GEOTIFF_ENDPOINT, "/docs", "/openapi.json"), worker)
    worker.on_batch = metrics.batch_size.observe

    @contextlib.asynccontextmanager
    async def lifespan(app):
        worker.start()
        yield
        worker.stop()

    options = dict(title="tutorial_lib instance segmentation (PaddleX serving schema)", version="2",
                   lifespan=lifespan)
    try:  # FastAPI >= 0.116: also read JSON sent without a Content-Type header, as older versions did
        app = FastAPI(strict_content_type=False, **options)
    except TypeError:
        app = FastAPI(**options)
    app.state.worker, app.state.metrics, app.state.server = worker, metrics, server
    app.add_middleware(_BodyLimit, max_bytes=limits.max_body_bytes)
    app.add_middleware(_Observe, metrics=metrics)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request, exc):
        return server.respond(envelope(exc.status_code, str(exc.detail)))

    @app.exception_handler(RequestValidationError)
    async def validation_error(request, exc):
        fields = tuple(GeoTiffRequest.model_fields) if request.url.path == GEOTIFF_ENDPOINT \
            else tuple(InferRequest.model_fields)
        return server.respond(envelope(400, validation_message(exc.errors(), fields)))

    @app.exception_handler(Exception)
    async def internal_error(request, exc):
        return server.respond(envelope(500, f"internal server error: {type(exc).__name__}"))

    @app.get("/health", operation_id="checkHealth", response_model=ResultResponse[HealthResult])
    async def health():
        """PaddleX's health check: the process answers."""
        return envelope(200, "Healthy", {"status": "healthy"})

    @app.get("/health/live", response_model=ResultResponse[HealthResult])
    async def live():
        """Liveness: the process answers, also while the model is still loading."""
        return envelope(200, "Alive", {"status": "alive"})

    @app.get("/health/ready", response_model=ResultResponse[HealthResult], responses={503: ERROR_RESPONSES[503]})
    async def ready():
        """Readiness: 200 once the model is loaded and warmed up, 503 (with what it is doing) before."""
        worker.start()
        if worker.ready.is_set():
            return server.respond(envelope(200, "Ready", {"status": "ready"}))
        return server.respond(envelope(503, f"not ready: {worker.status}"))

    @app.get("/metrics", include_in_schema=False)
    async def prometheus():
        data, content_type = metrics.exposition()
        return Response(data, media_type=content_type)

    @app.post(INFER_ENDPOINT, operation_id="infer", response_model=ResultResponse[InferResult],
              responses=ERROR_RESPONSES)
    async def infer(request: InferRequest):
        """PaddleX's instance segmentation: the instances (box, class, score, RLE mask) of one image."""
        async def handle():
            async with server.decoded():
                image = await server.in_thread(server.read_image, request.image)
                result = await asyncio.wrap_future(worker.submit(image, request.threshold))
                del image
            draw = server.visualize if request.visualize is None else request.visualize
            return envelope(200, "Success", await server.in_thread(result_payload, result, draw,
                                                                   bool(request.polygons)))
        return await server.run(handle)

    @app.post(GEOTIFF_ENDPOINT, operation_id="inferGeoTiff", response_model=ResultResponse[GeoTiffResult],
              responses=ERROR_RESPONSES)
    async def infer_geotiff(request: GeoTiffRequest):
        """A GeoTIFF predicted tile by tile (sliced inference) -> GeoJSON, one polygon per instance."""
        if not hasattr(worker.pipeline, "predict_geotiff") and worker.loaded.is_set():
            return server.respond(envelope(501, "this pipeline has no GeoTIFF prediction"))

        async def handle():
            folder = tempfile.mkdtemp(prefix="tutorial_lib_geotiff_")
            try:
                path = await server.in_thread(_store_geotiff, server, request.image, folder)
                summary = await asyncio.wrap_future(worker.call(
                    lambda p: _predict_geotiff(p, path, folder, request)))
                return envelope(200, "Success", summary)
            finally:
                threading.Thread(target=_remove, args=(folder,), daemon=True).start()
        return await server.run(handle)

    return app


def _remove(folder):
    import shutil

    shutil.rmtree(folder, ignore_errors=True)


def _store_geotiff(server, value, folder):
    """Write the request's GeoTIFF to ``folder`` after checking it is one and not over the pixel limit."""
    import warnings

    import rasterio
    from rasterio.errors import NotGeoreferencedWarning, RasterioIOError

    data = image_bytes(value, server.limits, server.guard)
    path = os.path.join(folder, "input.tif")
    with open(path, "wb") as f:
        f.write(data)
    del data
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            with rasterio.open(path, driver="GTiff") as dataset:
                width, height = dataset.width, dataset.height
    except RasterioIOError:
        raise RequestError(400, "'image' is not a GeoTIFF this server reads") from None
    if width * height > server.limits.max_geotiff_pixels:
        raise RequestError(413, f"GeoTIFF has {width}x{height} pixels, more than the limit "
                                f"{server.limits.max_geotiff_pixels}")
    return path


def _predict_geotiff(pipeline, path, folder, request):
    out = os.path.join(folder, "result.geojson")
    summary = pipeline.predict_geotiff(path, out, slice_size=request.sliceSize, overlap_ratio=request.overlapRatio,
                                       threshold=request.threshold, to_epsg4326=request.epsg4326, progress=False)
    with open(out, encoding="utf-8") as f:
        collection = json.load(f)
    return {"geojson": collection, "instances": summary["instances"], "crs": summary["crs"]}


def serve(pipeline, host="127.0.0.1", port=8080, limits=None, visualize=True, urls=None, batching=None,
          log_level="info", tune_memory=True):
    """Serve until interrupted. ``pipeline`` may be a function returning one: the port answers while it loads.

    ``tune_memory``: map large buffers outside the heap and trim the heap when idle (see :mod:`.memory`). A model
    that cannot be loaded stops the server with a :class:`~tutorial_lib.errors.UserError`.
    """
    import uvicorn

    from . import memory

    if tune_memory:
        memory.bound_heap()
    worker = ModelWorker(pipeline, batching, trim_when_idle=tune_memory)
    app = create_app(pipeline, limits, visualize, urls, batching, worker=worker)
    server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level=log_level))

    def stop_if_unloadable():
        while worker.error is None and not worker.loaded.wait(0.5):
            pass
        if not worker.loaded.is_set():
            server.should_exit = True

    threading.Thread(target=stop_if_unloadable, daemon=True).start()
    server.run()
    if not worker.loaded.is_set() and worker.error:
        raise UserError(worker.error)
