"""Where a weights file comes from: ``Train.pretrain_weight_path`` (or ``Global.pretrain_weight_path``) is a local
``.pdparams`` (with or without the suffix) or an http(s) URL, downloaded once with the project's resumable,
checked downloader (:func:`tutorial_lib.data.download.download`) into the weights cache.

``$TUTORIAL_LIB_WEIGHTS_MIRROR`` (a base URL) fetches every weights URL's file from a mirror instead, e.g. a
server inside a network that cannot reach PaddleDetection's bucket.
"""
import hashlib
import os
from pathlib import Path
from urllib.parse import urlparse

from ..errors import UserError


def cache_dir():
    """``$TUTORIAL_LIB_CACHE/weights`` (default ``~/.cache/tutorial_lib/weights``)."""
    root = os.environ.get("TUTORIAL_LIB_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "tutorial_lib")
    return Path(root) / "weights"


def cached_path(url):
    """The cache file of ``url``: its file name under a folder named after a hash of the whole URL (two URLs with
    the same file name never share a file)."""
    name = Path(urlparse(url).path).name or "weights.pdparams"
    return cache_dir() / hashlib.sha256(url.encode("utf-8")).hexdigest()[:16] / name


def mirrored(url):
    """``url`` as fetched: the same file name under ``$TUTORIAL_LIB_WEIGHTS_MIRROR`` when that is set."""
    mirror = os.environ.get("TUTORIAL_LIB_WEIGHTS_MIRROR")
    if not mirror:
        return url
    return mirror.rstrip("/") + "/" + Path(urlparse(url).path).name


def weights_file(path, sha256=None, progress=True, retries=3):
    """``path`` (local file or URL) -> an existing local ``.pdparams``; a URL is downloaded into the cache once (a
    partial download resumes) and raises a :class:`UserError` naming the URL when it cannot be reached."""
    text = str(path)
    if text.startswith(("http://", "https://")):
        target = cached_path(text)
        if not target.is_file():
            from ..data.download import download

            try:
                download(mirrored(text), target, sha256=sha256, progress=progress, retries=retries)
            except UserError as exc:
                raise UserError(f"cannot download weights {text}: {exc}; download it yourself and pass the local "
                                ".pdparams path") from None
        return target
    file = Path(text if text.endswith(".pdparams") else text + ".pdparams")
    if not file.is_file():
        raise UserError(f"pretrain_weight_path={path}: no such file")
    return file
