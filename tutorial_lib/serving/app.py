"""The server: PaddleX's instance-segmentation operation plus health, readiness, metrics and GeoTIFF input.

    POST /instance-segmentation          PaddleX's infer: {"image", "threshold"?, "visualize"?, "polygons"?}
    POST /instance-segmentation/geotiff  GeoTIFF (base64 or URL) -> GeoJSON, sliced inference
    GET  /health                         PaddleX's health check: 200 once requests are served (model loaded and
                                         warmed up), 503 before and while shutting down
    GET  /health/live                    liveness: the process answers (also while the model loads)
    GET  /health/ready                   readiness: the same answer as /health
    GET  /metrics                        Prometheus
    GET  /docs, /openapi.json            the request and response schema

:func:`create_app` puts together the infrastructure (:mod:`.infra`: lifespan, middlewares, error envelope,
admission, health and metrics) and the operations (:mod:`.routes`). Only the model thread
(:class:`.worker.ModelWorker`) runs the model; reading the request, decoding the image, encoding the masks and
drawing run in a small thread pool beside it (``decode_threads``). Memory under load is bounded by the limits:
requests in flight, images decoded and waiting for the model, pixels per image. :func:`serve` runs it until
``SIGTERM`` or Ctrl-C, which drain it (:mod:`.shutdown`).
"""
from typing import TYPE_CHECKING, Optional

from ..errors import UserError
from .infra import HEALTH_ROUTES, ServerState, build_app
from .limits import Limits, UrlPolicy
from .routes import add_routes
from .schema import GEOTIFF_ENDPOINT, INFER_ENDPOINT
from .worker import Batching, ModelWorker

if TYPE_CHECKING:
    from fastapi import FastAPI

ROUTE = INFER_ENDPOINT


def create_app(pipeline, limits: Optional[Limits] = None, visualize: bool = True, urls: Optional[UrlPolicy] = None,
               batching: Optional[Batching] = None, warmup: bool = True, decode_threads: int = 4,
               worker: Optional[ModelWorker] = None) -> "FastAPI":
    """A FastAPI app serving ``pipeline``.

    ``pipeline``: anything with ``predict(array, threshold=...)`` yielding results (an
    :class:`~tutorial_lib.pipeline.InstanceSegmentationPipeline`), or a function that returns one: then the
    server answers (``/health/live``) while it loads, and ``/health`` and ``/health/ready`` turn 200 once it is
    loaded and warmed up. ``limits``: :class:`~.limits.Limits`; ``urls``: :class:`~.limits.UrlPolicy` (default:
    public addresses only); ``visualize``: the default of the request's ``visualize``; ``batching``:
    :class:`~.worker.Batching` to group concurrent requests (off by default); ``warmup``: one prediction on a
    synthetic image before reporting ready.
    """
    from .metrics import Metrics

    limits = limits or Limits()
    worker = worker or ModelWorker(pipeline, batching, warmup)
    state = ServerState(worker, limits, urls or UrlPolicy(), visualize, decode_threads)
    metrics = Metrics(HEALTH_ROUTES + (INFER_ENDPOINT, GEOTIFF_ENDPOINT, "/docs", "/openapi.json"), worker)
    worker.on_batch = metrics.batch_size.observe
    app = build_app(state, metrics)
    add_routes(app)
    return app


def serve(pipeline, host: str = "127.0.0.1", port: int = 8080, limits: Optional[Limits] = None, visualize: bool = True,
          urls: Optional[UrlPolicy] = None, batching: Optional[Batching] = None, log_level: str = "info",
          tune_memory: bool = True, drain_timeout_s: Optional[float] = 30.0) -> None:
    """Serve until ``SIGTERM`` or Ctrl-C. ``pipeline`` may be a function returning one: the port answers while it
    loads.

    The first ``SIGTERM`` / ``SIGINT`` drains: new requests and readiness get 503, the requests in flight finish
    (for up to ``drain_timeout_s``, then they are cancelled; ``None``: as long as they take), and this returns (the
    command line exits 0); a second one stops at once. ``tune_memory``: map large buffers outside the heap and trim
    the heap when idle (see :mod:`.memory`). A model that cannot be loaded stops the server with a
    :class:`~tutorial_lib.errors.UserError`.
    """
    import uvicorn

    from . import memory
    from .shutdown import GracefulServer

    if tune_memory:
        memory.bound_heap()
    worker = ModelWorker(pipeline, batching, trim_when_idle=tune_memory)
    app = create_app(pipeline, limits, visualize, urls, batching, worker=worker)
    config = uvicorn.Config(app, host=host, port=port, log_level=log_level, timeout_graceful_shutdown=drain_timeout_s)
    GracefulServer(config, app.state.server).run()
    if not worker.loaded.is_set() and worker.error:
        raise UserError(worker.error)
