"""HTTP serving of an instance-segmentation pipeline (FastAPI) with PaddleX's request/response schema.

    POST /instance-segmentation  {"image": "<base64 or http(s) URL>", "threshold": 0.5, "visualize": true,
                                  "polygons": false}
      -> {"logId", "errorCode": 0, "errorMsg": "Success",
          "result": {"instances": [{"bbox", "categoryId", "categoryName", "score",
                                    "mask": {"rleResult", "size"}, "polygon"?}], "image": "<base64 JPEG> or null"}}
    POST /instance-segmentation/geotiff  {"image": "<base64 GeoTIFF or URL>", "sliceSize", ...} -> GeoJSON
    GET /health (200 once requests are served, 503 before and while shutting down), /health/live,
        /health/ready, /metrics, /docs

``threshold``, ``visualize`` and ``polygons`` are optional; ``visualize`` defaults to the server's setting
(``create_app(..., visualize=True)``); ``false`` skips drawing and encoding the overlay (``"image": null``).
Every bad request gets a 4xx with ``errorCode`` (the HTTP status) and ``errorMsg``; the server keeps serving.

``SIGTERM`` or Ctrl-C drains the server started by :func:`serve`: the requests in flight finish, new ones get 503,
the process exits 0.

Modules: :mod:`.schema` (pydantic models), :mod:`.app` (``create_app``, ``serve``) over :mod:`.infra` (lifespan,
admission, health, metrics, error envelope; with :mod:`.middleware` and :mod:`.errors`) and :mod:`.routes` (the
operations), :mod:`.shutdown` (graceful ``SIGTERM`` / ``SIGINT``), :mod:`.worker` (the model thread,
micro-batching), :mod:`.images` and :mod:`.urls` (decoding and guarded URL fetching under :mod:`.limits`),
:mod:`.payload`, :mod:`.metrics`, :mod:`.memory`, :mod:`.client`, :mod:`.background`.
"""
from .app import ROUTE, create_app, serve
from .background import BackgroundServer, free_port
from .client import Client
from .errors import RequestError
from .images import decode_image
from .limits import Limits, UrlPolicy
from .payload import result_payload
from .worker import Batching

__all__ = ["BackgroundServer", "Batching", "Client", "Limits", "ROUTE", "RequestError", "UrlPolicy", "create_app",
           "decode_image", "free_port", "result_payload", "serve"]
