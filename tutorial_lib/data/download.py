"""Step 4: download and safely unpack a dataset archive.

:func:`download` resumes a partial ``<dest>.part`` file with an HTTP ``Range`` request, retries with
exponential back-off, checks an optional sha256 and renames the file into place only when it is
complete. :func:`extract` unpacks tar/zip archives after refusing unsafe members (absolute paths,
``..``, links that point outside the target, device files). The tutorial's dataset is
:data:`DEFAULT_URL`::

    python -m tutorial_lib download --output data [--url URL] [--sha256 HEX]
"""
import hashlib
import os
import tarfile
import time
import zipfile
from pathlib import Path, PurePosixPath
from urllib.parse import urlparse

import requests
from tqdm.auto import tqdm

from ..errors import UserError

DEFAULT_URL = "https://paddle-model-ecology.bj.bcebos.com/paddlex/data/intseg_remote_sense_coco.tar"
CHUNK = 1 << 15  # bytes per read; a dropped connection loses at most the read in progress
RETRY_STATUS = (408, 429, 500, 502, 503, 504)
ARCHIVE_SUFFIXES = (".tar.gz", ".tar.bz2", ".tar.xz", ".tgz", ".tar", ".zip")


class _Retry(Exception):
    """A failure worth another try (connection dropped, timeout, 5xx)."""


def sha256sum(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _fetch(url, part, timeout, progress):
    """Append the rest of ``url`` to ``part`` (resuming from its size); raise _Retry on transient failures."""
    have = part.stat().st_size if part.exists() else 0
    headers = {"Range": f"bytes={have}-"} if have else {}
    try:
        with requests.get(url, headers=headers, stream=True, timeout=timeout) as response:
            if response.status_code == 416:  # nothing left to send: the .part file is complete (or wrong)
                total = response.headers.get("Content-Range", "").rpartition("/")[2]
                if total.isdigit() and int(total) == have:
                    return
                part.unlink()
                raise _Retry("the server rejected the resume range; starting over")
            if response.status_code in RETRY_STATUS:
                raise _Retry(f"HTTP {response.status_code} {response.reason}")
            if response.status_code >= 400:
                raise UserError(f"download of {url} failed: HTTP {response.status_code} {response.reason}; "
                                "check the URL")
            if response.status_code != 206:  # the server ignored the Range header: start from zero
                have = 0
            length = response.headers.get("Content-Length")
            expected = have + int(length) if length and length.isdigit() else None
            with open(part, "ab" if have else "wb") as f, tqdm(
                    total=expected, initial=have, unit="B", unit_scale=True, desc=PurePosixPath(part.name).stem,
                    disable=not progress) as bar:
                for chunk in response.iter_content(CHUNK):
                    f.write(chunk)
                    bar.update(len(chunk))
            if expected is not None and part.stat().st_size < expected:
                raise _Retry(f"connection closed after {part.stat().st_size} of {expected} bytes")
    except (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError) as exc:
        raise _Retry(_reason(exc)) from None


def _reason(exc):
    text = str(exc)
    for marker in ("Connection refused", "Name or service not known", "timed out", "Temporary failure",
                   "IncompleteRead", "Connection broken", "Connection reset"):
        if marker in text:
            return marker
    return type(exc).__name__


def download(url, dest_path, sha256=None, retries=3, backoff=1.0, timeout=30, progress=True):
    """Download ``url`` to ``dest_path``; return the path.

    An existing ``dest_path`` is kept if it matches ``sha256`` (or no hash is given). Transient failures
    are retried ``retries`` times, waiting ``backoff * 2**attempt`` seconds; a partial download is
    resumed from ``dest_path + ".part"``.
    """
    dest = Path(dest_path)
    if dest.is_file() and (sha256 is None or sha256sum(dest) == sha256.lower()):
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    for attempt in range(retries + 1):
        try:
            _fetch(url, part, timeout, progress)
            break
        except _Retry as exc:
            if attempt == retries:
                host = urlparse(url).hostname
                raise UserError(f"download of {url} failed after {retries + 1} tries ({exc}); check the network and "
                                f"that {host} is reachable, or download the file yourself to {dest}") from None
            time.sleep(backoff * 2 ** attempt)
    if sha256:
        actual = sha256sum(part)
        if actual != sha256.lower():
            part.unlink()
            raise UserError(f"checksum mismatch for {url}: expected sha256 {sha256.lower()}, got {actual}; the "
                            "partial file was deleted -- retry, or check the expected hash")
    os.replace(part, dest)
    return dest


# ----------------------------------------------------------------------------- extraction
def _unsafe_name(name):
    path = PurePosixPath(name.replace("\\", "/"))
    if path.is_absolute() or (path.parts and ":" in path.parts[0]):
        return "absolute path"
    if ".." in path.parts:
        return "path with '..'"
    return None


def _inside(target, path):
    target = os.path.realpath(target)
    return os.path.commonpath([target, os.path.realpath(path)]) == target


def _tar_problems(tar, target):
    problems = []
    for member in tar.getmembers():
        reason = _unsafe_name(member.name)
        if reason is None and member.isdev():  # character/block device or fifo
            reason = "device or fifo file"
        elif reason is None and member.issym():
            link = os.path.join(os.path.dirname(os.path.join(target, member.name)), member.linkname)
            if os.path.isabs(member.linkname) or not _inside(target, link):
                reason = f"symlink to {member.linkname} outside the target"
        elif reason is None and member.islnk():
            if _unsafe_name(member.linkname) or not _inside(target, os.path.join(target, member.linkname)):
                reason = f"hard link to {member.linkname} outside the target"
        if reason:
            problems.append(f"{member.name} ({reason})")
    return problems


def _zip_problems(archive):
    problems = []
    for info in archive.infolist():
        reason = _unsafe_name(info.filename)
        if reason is None and (info.external_attr >> 16) & 0o170000 == 0o120000:
            reason = "symlink"
        if reason:
            problems.append(f"{info.filename} ({reason})")
    return problems


def extract(archive, target_dir):
    """Unpack a tar (any compression) or zip ``archive`` into ``target_dir``; refuse unsafe members.

    Nothing is written if any member is unsafe; the error names every one of them. Returns ``target_dir``.
    """
    archive, target = Path(archive), Path(target_dir)
    target.mkdir(parents=True, exist_ok=True)
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as zf:
            problems = _zip_problems(zf)
            if not problems:
                zf.extractall(target)
    elif tarfile.is_tarfile(archive):
        with tarfile.open(archive) as tar:
            problems = _tar_problems(tar, str(target))
            if not problems:
                tar.extractall(target, filter="data")
    else:
        raise UserError(f"{archive} is neither a tar nor a zip archive (download incomplete or wrong URL?)")
    if problems:
        raise UserError(f"refusing to extract {archive.name}: unsafe member(s) {'; '.join(problems[:10])}"
                        + (f"; and {len(problems) - 10} more" if len(problems) > 10 else ""))
    return target


def _archive_stem(name):
    for suffix in ARCHIVE_SUFFIXES:
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return PurePosixPath(name).stem


def download_dataset(url=DEFAULT_URL, root="data", sha256=None, **kwargs):
    """Download and extract a dataset archive into ``root``; return the dataset folder.

    The archive is expected to hold one top folder named like the archive (``intseg_remote_sense_coco/``
    for the default URL); if that folder already has annotations, nothing is downloaded. ``kwargs`` go to
    :func:`download` (``retries``, ``backoff``, ``timeout``, ``progress``).
    """
    root = Path(root)
    name = PurePosixPath(urlparse(url).path).name or "dataset.tar"
    dataset_dir = root / _archive_stem(name)
    if (dataset_dir / "annotations").is_dir():
        return dataset_dir
    archive = download(url, root / name, sha256=sha256, **kwargs)
    extract(archive, root)
    return dataset_dir if dataset_dir.is_dir() else root
