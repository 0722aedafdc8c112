"""What a request may cost the server: body and image size, pixels, URL fetching, requests in flight."""
from dataclasses import dataclass
from typing import Sequence


@dataclass
class Limits:
    """Request limits; a request over one gets 413 (or 503 for ``max_in_flight``) in PaddleX's envelope.

    ``max_pixels`` bounds what one decoded image costs (3 bytes a pixel, plus the model's resized copy), checked
    from the image header before any pixel is decoded. ``max_geotiff_pixels`` bounds a GeoTIFF, which is read
    window by window and so may be larger. ``max_in_flight`` bounds the requests held at once; more get 503 and
    may retry. ``max_decoded`` bounds the images decoded and waiting for (or in) the model: under load, decoded
    images piling up in the queue are what grows memory, so a request decodes only when one of these slots is
    free (until then it holds just its body).
    """

    max_body_bytes: int = 20 * 1024 * 1024
    max_image_bytes: int = 15 * 1024 * 1024
    max_pixels: int = 40_000_000
    max_geotiff_pixels: int = 400_000_000
    url_timeout_s: float = 10.0
    max_in_flight: int = 32
    max_decoded: int = 8


@dataclass
class UrlPolicy:
    """Which image URLs the server fetches.

    By default only public addresses: a URL whose host resolves to a loopback, private, link-local, multicast or
    otherwise non-global address is refused (so a request cannot make the server read its own or its network's
    internal services), and so is every redirect to one. ``allow`` lists hosts or networks fetched anyway:
    host names (``"images.internal"``), addresses or CIDR networks (``"127.0.0.1"``, ``"10.0.0.0/8"``).
    ``enabled=False`` refuses every URL (clients then send base64). Size and time caps come from
    :class:`Limits` (``max_image_bytes``, ``url_timeout_s``, the whole download including redirects).
    """

    enabled: bool = True
    allow: Sequence[str] = ()
    max_redirects: int = 3
