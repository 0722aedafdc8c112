"""Request ``image`` field -> bytes (base64 or a guarded URL) -> RGB pixels, refusing what would cost too much.

The image header is read first and its declared size checked against ``Limits.max_pixels`` before a pixel is
decoded, so a small file that claims 100,000 x 100,000 pixels costs nothing (413, not a 500 or an out-of-memory).
"""
import base64
import binascii
import io
import warnings

import numpy as np

from .errors import RequestError

# formats a client may send; others (EPS, PSD, ICO, ...) are refused before their decoders run
FORMATS = ("PNG", "JPEG", "BMP", "TIFF", "WEBP", "GIF")


def image_bytes(value, limits, url_guard):
    """The bytes a request's ``image`` field stands for (an http(s) URL is fetched through ``url_guard``)."""
    if value.startswith(("http://", "https://")):
        return url_guard.fetch(value)
    if value.startswith("data:") and "," in value:
        value = value.split(",", 1)[1]
    if len(value) * 3 // 4 > limits.max_image_bytes:
        raise RequestError(413, f"image is larger than {limits.max_image_bytes} bytes")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise RequestError(400, "'image' is neither valid base64 nor an http(s) URL") from None


def decode_image(data, limits):
    """Bytes -> RGB uint8 (H, W, 3); 400 for non-images and truncated files, 413 over the pixel limit."""
    from PIL import Image, UnidentifiedImageError

    from ..data.images import strict_decoding

    if not data:
        raise RequestError(400, "'image' is empty")
    too_many = ("image has {} pixels, more than the limit " + f"{limits.max_pixels}; use sliced inference for "
                "large scenes")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # our own limit is checked below
            image = Image.open(io.BytesIO(data), formats=FORMATS)
        width, height = image.size
        if width * height > limits.max_pixels:
            raise RequestError(413, too_many.format(f"{width}x{height}"))
        if width < 1 or height < 1:
            raise RequestError(400, f"'image' declares an empty size {width}x{height}")
        with strict_decoding():
            image.load()
        rgb = image if image.mode == "RGB" else image.convert("RGB")
        return np.asarray(rgb)
    except RequestError:
        raise
    except Image.DecompressionBombError as exc:  # PIL's own limit, raised by open() from the header alone
        raise RequestError(413, too_many.format(f"more than {limits.max_pixels} ({exc})")) from None
    except UnidentifiedImageError:
        raise RequestError(400, "'image' bytes are not an image format this server reads "
                                f"({', '.join(FORMATS)})") from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise RequestError(400, f"'image' could not be decoded (truncated or corrupt): {exc}") from None
