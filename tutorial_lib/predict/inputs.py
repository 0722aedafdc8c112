"""Prediction inputs: a path, a folder, a ``file://`` or http(s) URL, an RGB numpy array, or a list of these,
read lazily one at a time."""
from pathlib import Path

import numpy as np

from ..errors import UserError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")


def read_image(path):
    """RGB uint8 (H, W, 3) from an image file."""
    import cv2

    data = np.fromfile(str(path), dtype=np.uint8)
    image = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
    if image is None:
        raise UserError(f"cannot read image {path}")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def read_url(url, timeout=30, max_bytes=200 * 1024 * 1024):
    """RGB uint8 image from an http(s) URL (read into memory, never written to disk)."""
    import cv2
    import requests

    try:
        response = requests.get(url, timeout=timeout)
    except requests.RequestException as exc:
        raise UserError(f"cannot fetch {url}: {type(exc).__name__}") from None
    if response.status_code != 200:
        raise UserError(f"cannot fetch {url}: HTTP {response.status_code}")
    if len(response.content) > max_bytes:
        raise UserError(f"{url} is larger than {max_bytes} bytes")
    image = cv2.imdecode(np.frombuffer(response.content, np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        raise UserError(f"{url} did not return an image this library can decode")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def _as_rgb(array):
    array = np.asarray(array)
    if array.ndim == 2:
        array = np.stack([array] * 3, axis=-1)
    if array.ndim != 3 or array.shape[2] not in (3, 4):
        raise UserError(f"an input array must be (H, W, 3) RGB, got shape {array.shape}")
    if array.dtype != np.uint8:
        array = np.clip(array, 0, 255).astype(np.uint8)
    return np.ascontiguousarray(array[..., :3])


def iter_sources(inputs):
    """Yield ``(input_path or None, loader)`` without reading any image yet."""
    if isinstance(inputs, (list, tuple)):
        for item in inputs:
            yield from iter_sources(item)
        return
    if isinstance(inputs, np.ndarray):
        yield None, (lambda a=inputs: _as_rgb(a))
        return
    if inputs is None:
        raise UserError("no input given; pass an image path, a folder, an RGB array or a list of these "
                        "(-o Predict.input=...)")
    path = Path(str(inputs))
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise UserError(f"folder {path} holds no images ({', '.join(IMAGE_SUFFIXES)})")
        for file in files:
            yield str(file), (lambda f=file: read_image(f))
        return
    text = str(inputs)
    if text.startswith(("http://", "https://")):
        yield text, (lambda url=text: read_url(url))
        return
    if text.startswith("file://"):
        from urllib.parse import unquote, urlparse

        yield from iter_sources(unquote(urlparse(text).path))
        return
    if not path.is_file():
        raise UserError(f"input {inputs} does not exist")
    yield str(path), (lambda f=path: read_image(f))
