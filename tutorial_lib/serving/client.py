"""A small Python client of the server (PaddleX's request/response schema)."""
import base64

from ..errors import UserError
from .schema import GEOTIFF_ENDPOINT, INFER_ENDPOINT


def _encode(image):
    """A file path, raw bytes or an http(s) URL -> the request's ``image`` value."""
    if isinstance(image, (bytes, bytearray)):
        return base64.b64encode(bytes(image)).decode("ascii")
    if str(image).startswith(("http://", "https://")):
        return str(image)
    with open(image, "rb") as f:
        return base64.b64encode(f.read()).decode("ascii")


def decode_overlay(result):
    """The overlay image of a response's ``result`` (base64 JPEG, PaddleX's ``image`` field) as an RGB array
    (``None`` when the request asked for none)."""
    import cv2
    import numpy as np

    if not result.get("image"):
        return None
    data = np.frombuffer(base64.b64decode(result["image"]), np.uint8)
    return np.ascontiguousarray(cv2.imdecode(data, cv2.IMREAD_COLOR)[..., ::-1])


class Client:
    """``Client("http://127.0.0.1:8080").predict("scene.png", threshold=0.5)``."""

    def __init__(self, base_url="http://127.0.0.1:8080", timeout=60):
        self.base_url, self.timeout = base_url.rstrip("/"), timeout

    def _post(self, route, payload):
        import requests

        payload = {k: v for k, v in payload.items() if v is not None}
        response = requests.post(self.base_url + route, json=payload, timeout=self.timeout)
        try:
            body = response.json()
        except ValueError:
            raise UserError(f"server answered {response.status_code} without JSON") from None
        if body.get("errorCode") != 0:
            raise UserError(f"server answered {response.status_code}: {body.get('errorMsg')}")
        return body["result"]

    def predict(self, image, threshold=None, visualize=None, polygons=None):
        """``image``: a file path, raw bytes or an http(s) URL; returns the response's ``result``
        (``visualize=False``: no overlay image, ``result["image"]`` is ``None``; ``polygons=True``: each instance
        also has ``polygon``, a GeoJSON geometry in pixel coordinates)."""
        return self._post(INFER_ENDPOINT, {"image": _encode(image), "threshold": threshold, "visualize": visualize,
                                           "polygons": polygons})

    def predict_geotiff(self, image, threshold=None, slice_size=None, overlap_ratio=None, epsg4326=None):
        """A GeoTIFF (path, bytes or URL) -> ``{"geojson": FeatureCollection, "instances": n, "crs": ...}``."""
        return self._post(GEOTIFF_ENDPOINT, {"image": _encode(image), "threshold": threshold,
                                             "sliceSize": slice_size, "overlapRatio": overlap_ratio,
                                             "epsg4326": epsg4326})

    def ready(self):
        """Whether the server's model is loaded and warmed up (``GET /health/ready``)."""
        import requests

        try:
            return requests.get(self.base_url + "/health/ready", timeout=self.timeout).status_code == 200
        except requests.RequestException:
            return False
