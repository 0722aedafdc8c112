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
from ..paddle_env import import_paddle


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
            except UserError as exc:  # the URL and the network error are in the cause (shown with --debug)
                raise UserError(f"cannot download {Path(urlparse(text).path).name} from {urlparse(text).hostname}: "
                                "download it yourself and pass the local .pdparams path") from exc
        return target
    file = Path(text if text.endswith(".pdparams") else text + ".pdparams")
    if not file.is_file():
        raise UserError(f"pretrain_weight_path={path}: no such file")
    return file


def load_matching(model, state, strict=False):
    """Load the tensors of ``state`` whose names and shapes match ``model``'s; return (loaded, skipped).

    ``skipped`` lists ``(name, reason)``: layers whose shape depends on the number of classes
    (classification and mask logits) are re-initialised this way when a checkpoint has another class count.
    """
    own = model.state_dict()
    loaded, skipped, matched = [], [], {}
    for name, value in state.items():
        if name not in own:
            skipped.append((name, "not in this model"))
            continue
        if list(value.shape) != list(own[name].shape):
            skipped.append((name, f"shape {list(value.shape)} != {list(own[name].shape)}"))
            continue
        matched[name] = value
        loaded.append(name)
    if strict and (skipped or len(loaded) != len(own)):
        missing = [n for n in own if n not in matched]
        reason = skipped[0] if skipped else (missing[0], "missing from checkpoint")
        raise UserError(f"checkpoint does not match the model: {reason[0]} ({reason[1]})")
    model.set_state_dict({**own, **matched})  # the rest keep their own values (paddle warns per key left out)
    return loaded, skipped


def load_pretrained(model, path, log=print):
    """Official or own ``.pdparams`` -> model; class-dependent layers that do not fit are re-initialised."""
    paddle = import_paddle()
    file = weights_file(path)
    state = paddle.load(str(file))
    loaded, skipped = load_matching(model, state)
    if not loaded:
        raise UserError(f"Train.pretrain_weight_path={path} shares no layer with this model; wrong checkpoint?")
    log(f"pretrained weights {file.name}: {len(loaded)} tensors loaded"
        + (f", {len(skipped)} re-initialised because they do not fit this model (e.g. other num_classes): "
           + ", ".join(name for name, _ in skipped[:6]) + (" ..." if len(skipped) > 6 else "") if skipped else ""))
    return loaded, skipped
