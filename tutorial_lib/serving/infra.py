"""What every operation of the server shares (PaddleX keeps the same apart from its ``_pipeline_apps``): the FastAPI
app and its lifespan, the middlewares, PaddleX's envelope for every failure, admission (readiness, the in-flight
limit, shutdown) and the health, readiness, liveness and metrics endpoints. The operations are in :mod:`.routes`.

"Ready" means one thing everywhere: the model is loaded and warmed up and the server is not shutting down. A
PaddleX client polls ``GET /health`` and then sends its request, so ``/health`` answers 200 only when that request
will be served, exactly like the readiness probe ``/health/ready``; both answer 503 (PaddleX's error envelope,
saying what the server is doing) before and while it drains. The liveness probe ``/health/live`` answers 200
whenever the process does, also while the model loads and while it drains, so that nothing restarts a server that
is only busy.
"""
import asyncio
import contextlib
from typing import TYPE_CHECKING

from starlette.requests import Request

from ..errors import UserError
from .errors import RequestError, envelope, respond
from .images import decode_image, image_bytes
from .middleware import BodyLimit, Observe
from .schema import (ERROR_RESPONSES, GEOTIFF_ENDPOINT, GeoTiffRequest, HealthResult, InferRequest, ResultResponse,
                     validation_message)
from .urls import UrlGuard

if TYPE_CHECKING:
    from fastapi import FastAPI

HEALTH_ROUTES = ("/health", "/health/live", "/health/ready", "/metrics")
SHUTTING_DOWN = "shutting down: finishing the requests in flight, taking no new ones"
STOP_WAIT_S = 2.0


class ServerState:
    """What the routes share: limits, the URL guard, the model worker, the decode thread pool, and ``draining``
    (set on shutdown: requests already admitted finish, new ones and the readiness checks get 503)."""

    def __init__(self, worker, limits, urls, visualize, decode_threads):
        self.worker, self.limits, self.visualize = worker, limits, visualize
        self.guard = UrlGuard(urls, limits)
        self.in_flight = 0  # touched on the event loop only
        self.draining = False
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
        """Refuse (503) while shutting down, while the model is not loaded, or with too many requests in flight."""
        if self.draining:
            raise RequestError(503, SHUTTING_DOWN)
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

    async def run(self, handler):
        """``handler()`` -> result dict, with every expected failure turned into PaddleX's envelope."""
        try:
            async with self.admitted():
                return respond(await handler())
        except RequestError as exc:
            return respond(envelope(exc.status, exc.message))
        except UserError as exc:
            return respond(envelope(400, str(exc)))

    def readiness(self, message: str, status: str):
        """200 with ``{"status": status}`` when a request would be served now, else 503 saying why not."""
        self.worker.start()
        if self.draining:
            return respond(envelope(503, SHUTTING_DOWN))
        if self.worker.ready.is_set():
            return respond(envelope(200, message, {"status": status}))
        return respond(envelope(503, f"not ready: {self.worker.status}"))


@contextlib.asynccontextmanager
async def lifespan(app):
    """Start loading the model with the server. Shutdown comes after uvicorn has let the requests in flight finish
    (or cancelled what was left at its ``timeout_graceful_shutdown``), so nothing the model thread might still be
    doing (loading, a cancelled request's prediction) has a reader: it gets a short while, not the whole job."""
    worker = app.state.worker
    worker.start()
    yield
    worker.stop(timeout=STOP_WAIT_S)


async def http_error(request, exc):
    return respond(envelope(exc.status_code, str(exc.detail)))


async def validation_error(request, exc):
    fields = GeoTiffRequest.model_fields if request.url.path == GEOTIFF_ENDPOINT else InferRequest.model_fields
    return respond(envelope(400, validation_message(exc.errors(), tuple(fields))))


async def internal_error(request, exc):
    return respond(envelope(500, f"internal server error: {type(exc).__name__}"))


async def health(request: Request):
    """PaddleX's health check: 200 once requests are served (model loaded and warmed up), 503 before and while
    shutting down, so that a client polling it sends its request only when it will be answered."""
    return request.app.state.server.readiness("Healthy", "healthy")


async def live():
    """Liveness: the process answers, also while the model is still loading."""
    return envelope(200, "Alive", {"status": "alive"})


async def ready(request: Request):
    """Readiness: 200 once the model is loaded and warmed up, 503 (with what it is doing) before and while shutting
    down."""
    return request.app.state.server.readiness("Ready", "ready")


async def prometheus(request: Request):
    from starlette.responses import Response

    data, content_type = request.app.state.metrics.exposition()
    return Response(data, media_type=content_type)


def build_app(state: ServerState, metrics) -> "FastAPI":
    """A FastAPI app with the infrastructure (no operation yet: :func:`.routes.add_routes` adds them)."""
    from fastapi import FastAPI
    from fastapi.exceptions import RequestValidationError
    from starlette.exceptions import HTTPException as StarletteHTTPException

    options = dict(title="tutorial_lib instance segmentation (PaddleX serving schema)", version="2",
                   lifespan=lifespan)
    try:  # FastAPI >= 0.116: also read JSON sent without a Content-Type header, as older versions did
        app = FastAPI(strict_content_type=False, **options)
    except TypeError:
        app = FastAPI(**options)
    app.state.worker, app.state.metrics, app.state.server = state.worker, metrics, state
    app.add_middleware(BodyLimit, max_bytes=state.limits.max_body_bytes)
    app.add_middleware(Observe, metrics=metrics)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(Exception, internal_error)
    health_model, not_ready = ResultResponse[HealthResult], {503: ERROR_RESPONSES[503]}
    app.add_api_route("/health", health, operation_id="checkHealth", response_model=health_model, responses=not_ready)
    app.add_api_route("/health/live", live, response_model=health_model)
    app.add_api_route("/health/ready", ready, response_model=health_model, responses=not_ready)
    app.add_api_route("/metrics", prometheus, include_in_schema=False)
    return app
