"""download / extract / download_dataset against a local HTTP server that supports Range requests."""
import hashlib
import io
import os
import socket
import subprocess
import sys
import tarfile
import threading
import time
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from conftest import REPO
from tutorial_lib.data.download import download, download_dataset, extract
from tutorial_lib.errors import UserError

BODY = bytes(range(256)) * 1024  # 256 KiB


class Handler(BaseHTTPRequestHandler):
    files = {}  # path -> bytes
    drop_once = set()  # paths whose next response stops half-way through the body
    ignore_range = False
    log = []  # (path, Range header)

    def log_message(self, *args):
        pass

    def do_GET(self):
        self.log.append((self.path, self.headers.get("Range")))
        body = self.files.get(self.path)
        if body is None:
            self.send_error(404)
            return
        ranged = self.headers.get("Range") if not self.ignore_range else None
        start = int(ranged.split("=")[1].split("-")[0]) if ranged else 0
        if start >= len(body):
            self.send_response(416)
            self.send_header("Content-Range", f"bytes */{len(body)}")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self.send_response(206 if ranged else 200)
        if ranged:
            self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        self.send_header("Content-Length", str(len(body) - start))
        self.end_headers()
        rest = body[start:]
        if self.path in self.drop_once:  # send half, then hang up
            self.drop_once.discard(self.path)
            self.wfile.write(rest[: len(rest) // 2])
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        self.wfile.write(rest)


@pytest.fixture
def server():
    handler = type("TestHandler", (Handler,), {"files": {}, "drop_once": set(), "log": []})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    httpd.handle_error = lambda request, address: None  # the deliberate hang-ups are not test failures
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    handler.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    yield handler
    httpd.shutdown()
    httpd.server_close()


def sha(data):
    return hashlib.sha256(data).hexdigest()


def fetch(server, path, dest, **kwargs):
    return download(server.url + path, dest, progress=False, backoff=0.01, **kwargs)


def test_plain_download_checks_the_hash_and_leaves_no_part_file(server, tmp_path):
    server.files["/a.bin"] = BODY
    dest = fetch(server, "/a.bin", tmp_path / "sub" / "a.bin", sha256=sha(BODY).upper())
    assert dest.read_bytes() == BODY and not (tmp_path / "sub" / "a.bin.part").exists()
    fetch(server, "/a.bin", dest, sha256=sha(BODY))  # already there and correct: no new request
    assert server.log == [("/a.bin", None)]


def test_interrupted_transfer_resumes_with_a_range_request(server, tmp_path):
    server.files["/a.bin"] = BODY
    server.drop_once.add("/a.bin")
    dest = fetch(server, "/a.bin", tmp_path / "a.bin", sha256=sha(BODY))
    assert dest.read_bytes() == BODY
    assert len(server.log) == 2 and server.log[0] == ("/a.bin", None)
    resumed_from = int(server.log[1][1].removeprefix("bytes=").removesuffix("-"))
    assert 0 < resumed_from <= len(BODY) // 2  # what arrived before the hang-up was kept


def test_existing_part_file_is_resumed_or_restarted(server, tmp_path):
    server.files["/a.bin"] = BODY
    (tmp_path / "a.bin.part").write_bytes(BODY[:1000])
    assert fetch(server, "/a.bin", tmp_path / "a.bin").read_bytes() == BODY
    assert server.log[-1] == ("/a.bin", "bytes=1000-")
    server.ignore_range = True  # a server without Range support sends everything again
    (tmp_path / "b.bin.part").write_bytes(BODY[:1000])
    assert fetch(server, "/a.bin", tmp_path / "b.bin").read_bytes() == BODY


def test_wrong_checksum_names_both_hashes(server, tmp_path):
    server.files["/a.bin"] = BODY
    with pytest.raises(UserError) as info:
        fetch(server, "/a.bin", tmp_path / "a.bin", sha256="0" * 64)
    assert f"expected sha256 {'0' * 64}, got {sha(BODY)}" in str(info.value)
    assert list(tmp_path.iterdir()) == []


def test_http_error_is_not_retried(server, tmp_path):
    with pytest.raises(UserError, match="HTTP 404"):
        fetch(server, "/missing.tar", tmp_path / "x.tar", retries=3)
    assert len(server.log) == 1


def test_unreachable_host_retries_with_backoff_then_fails(tmp_path):
    with socket.socket() as s:  # a port that was free a moment ago: nothing listens on it
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    started = time.monotonic()
    with pytest.raises(UserError, match=r"failed after 3 tries \(Connection refused\).*127\.0\.0\.1 is reachable"):
        download(f"http://127.0.0.1:{port}/x.tar", tmp_path / "x.tar", retries=2, backoff=0.05, progress=False)
    assert 0.15 <= time.monotonic() - started < 5  # waited 0.05 + 0.1 s between the tries


def make_tar(members):
    """A tar from ``(TarInfo kwargs, data or None)`` pairs."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for kwargs, data in members:
            info = tarfile.TarInfo(**{k: v for k, v in kwargs.items() if k == "name"})
            for key, value in kwargs.items():
                setattr(info, key, value)
            info.size = len(data) if data is not None else 0
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return buffer.getvalue()


def test_extract_refuses_every_unsafe_member_and_writes_nothing(tmp_path):
    archive = tmp_path / "evil.tar"
    archive.write_bytes(make_tar([
        ({"name": "ok/file.txt"}, b"fine"),
        ({"name": "../escape.txt"}, b"x"),
        ({"name": "/abs.txt"}, b"x"),
        ({"name": "ok/link", "type": tarfile.SYMTYPE, "linkname": "../../outside"}, None),
        ({"name": "ok/abs_link", "type": tarfile.SYMTYPE, "linkname": "/etc/passwd"}, None),
        ({"name": "ok/hard", "type": tarfile.LNKTYPE, "linkname": "../outside"}, None),
        ({"name": "ok/dev", "type": tarfile.CHRTYPE}, None),
        ({"name": "ok/inner_link", "type": tarfile.SYMTYPE, "linkname": "file.txt"}, None),  # safe
    ]))
    target = tmp_path / "target"
    with pytest.raises(UserError) as info:
        extract(archive, target)
    message = str(info.value)
    for fragment in ("../escape.txt (path with '..')", "/abs.txt (absolute path)",
                     "ok/link (symlink to ../../outside outside the target)", "ok/abs_link (symlink to /etc/passwd",
                     "ok/hard (hard link to ../outside", "ok/dev (device or fifo file)"):
        assert fragment in message
    assert "inner_link" not in message
    assert list(target.iterdir()) == [] and not (tmp_path / "escape.txt").exists()


def test_extract_zip_and_safe_tar(tmp_path):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        zf.writestr("ds/a.txt", "A")
    (tmp_path / "ok.zip").write_bytes(buffer.getvalue())
    assert (extract(tmp_path / "ok.zip", tmp_path / "z") / "ds" / "a.txt").read_text() == "A"
    with zipfile.ZipFile(buffer, "w") as zf:
        zf.writestr("../../zip_escape.txt", "x")
    (tmp_path / "evil.zip").write_bytes(buffer.getvalue())
    with pytest.raises(UserError, match=r"\.\./\.\./zip_escape\.txt \(path with '\.\.'\)"):
        extract(tmp_path / "evil.zip", tmp_path / "z2")
    link = {"name": "ds/l", "type": tarfile.SYMTYPE, "linkname": "b.txt"}
    (tmp_path / "ok.tar").write_bytes(make_tar([({"name": "ds/b.txt"}, b"B"), (link, None)]))
    out = extract(tmp_path / "ok.tar", tmp_path / "t")
    assert (out / "ds" / "l").read_text() == "B"
    (tmp_path / "junk.tar").write_bytes(b"not an archive")
    with pytest.raises(UserError, match="neither a tar nor a zip"):
        extract(tmp_path / "junk.tar", tmp_path / "j")


def dataset_tar():
    return make_tar([({"name": "intseg_remote_sense_coco/annotations/instance_train.json"}, b"{}"),
                     ({"name": "intseg_remote_sense_coco/images/0.jpg"}, b"jpg")])


def test_download_dataset_downloads_once_and_returns_the_folder(server, tmp_path):
    data = dataset_tar()
    server.files["/paddlex/data/intseg_remote_sense_coco.tar"] = data
    url = server.url + "/paddlex/data/intseg_remote_sense_coco.tar"
    path = download_dataset(url, tmp_path / "data", sha256=sha(data), progress=False)
    assert path == tmp_path / "data" / "intseg_remote_sense_coco"
    assert (path / "annotations" / "instance_train.json").read_text() == "{}"
    assert download_dataset(url, tmp_path / "data", progress=False) == path and len(server.log) == 1


def test_cli_download_command(server, tmp_path):
    data = dataset_tar()
    server.files["/d/intseg_remote_sense_coco.tar"] = data
    env = dict(os.environ, PYTHONPATH=str(REPO))

    def cli(*args):
        return subprocess.run([sys.executable, "-m", "tutorial_lib", "download", "--url",
                               server.url + "/d/intseg_remote_sense_coco.tar", *args],
                              capture_output=True, text=True, env=env, timeout=60)
    bad = cli("--output", str(tmp_path / "bad"), "--sha256", "ab" * 32)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    assert bad.stderr.splitlines()[-1].startswith("error: checksum mismatch")  # after the progress bar
    good = cli("--output", str(tmp_path / "good"), "--sha256", sha(data))
    assert good.returncode == 0, good.stderr
    assert good.stdout.strip().endswith("good/intseg_remote_sense_coco")
