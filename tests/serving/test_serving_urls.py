"""Image URLs: the server refuses loopback, private and link-local targets (every resolved address, every redirect)
unless an allow-list names them, can turn URL inputs off, and caps a download's size and time.

Only 127.0.0.1 is ever contacted: refused addresses are refused before any connection is made.
"""
import io
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest
from PIL import Image

from tutorial_lib.predict import InstanceSegResult
from tutorial_lib.serving import BackgroundServer, Limits, RequestError, UrlPolicy
from tutorial_lib.serving.urls import UrlGuard
from tutorial_lib.structures import Instances


def png(width, height):
    buf = io.BytesIO()
    Image.fromarray(np.full((height, width, 3), 77, np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


IMAGE = png(40, 30)


class Recorder:
    """A pipeline that finds nothing and remembers the size of each image it was given."""

    def __init__(self):
        self.shapes = []

    def predict(self, image, threshold=None):
        self.shapes.append(image.shape)
        yield InstanceSegResult(None, Instances.empty(image.shape[:2]), ["thing"], image=image)


@pytest.fixture(scope="module")
def web():
    """A local web server on 127.0.0.1: an image, redirects, a large and a slow answer."""
    class Handler(BaseHTTPRequestHandler):
        def send(self, body, length=True, status=200, headers=()):
            self.send_response(status)
            for key, value in headers:
                self.send_header(key, value)
            if length:
                self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self):
            port = self.server.server_address[1]
            try:
                if self.path == "/ok.png":
                    self.send(IMAGE)
                elif self.path == "/to-ok":
                    self.send(b"", status=302, headers=[("Location", "/ok.png")])
                elif self.path == "/to-other-loopback":
                    self.send(b"", status=302, headers=[("Location", f"http://127.0.0.2:{port}/ok.png")])
                elif self.path == "/loop":
                    self.send(b"", status=301, headers=[("Location", "/loop")])
                elif self.path == "/big.png":
                    self.send(b"\0" * 300_000)
                elif self.path == "/big-unannounced.png":  # no Content-Length: only the byte count can stop it
                    self.close_connection = True
                    self.send(b"\0" * 300_000, length=False)
                elif self.path == "/slow.png":
                    self.send_response(200)
                    self.send_header("Content-Length", "1000")
                    self.end_headers()
                    for _ in range(40):
                        self.wfile.write(b"\0" * 25)
                        self.wfile.flush()
                        time.sleep(0.1)
                else:
                    self.send_error(404)
            except (BrokenPipeError, ConnectionResetError):
                pass

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def post(server, url, **extra):
    import requests

    response = requests.post(server.url + "/instance-segmentation", json={"image": url, **extra}, timeout=30)
    return response.status_code, response.json()


@pytest.fixture(scope="module")
def default_server():
    pipeline = Recorder()
    with BackgroundServer(pipeline, warmup=False) as server:
        server.pipeline = pipeline
        yield server


@pytest.fixture(scope="module")
def allowing_server():
    pipeline = Recorder()
    limits = Limits(max_image_bytes=100_000, url_timeout_s=1.0)
    with BackgroundServer(pipeline, limits=limits, urls=UrlPolicy(allow=["127.0.0.1"]), warmup=False) as server:
        server.pipeline = pipeline
        yield server


def test_own_health_endpoint_is_refused_by_default(default_server, web):
    status, body = post(default_server, default_server.url + "/health")
    assert status == 422 and body["errorCode"] == 422
    assert "refused" in body["errorMsg"] and "127.0.0.1" in body["errorMsg"] and "loopback" in body["errorMsg"]
    for url in (web + "/ok.png", f"http://localhost:{web.rsplit(':', 1)[1]}/ok.png"):
        status, body = post(default_server, url)
        assert status == 422 and "loopback" in body["errorMsg"]
    assert default_server.pipeline.shapes == []  # nothing reached the model


def test_allow_list_lets_the_same_requests_through(allowing_server, web):
    status, body = post(allowing_server, allowing_server.url + "/health")
    assert status == 400 and "not an image" in body["errorMsg"]  # fetched: the server's own JSON, not an image
    status, body = post(allowing_server, web + "/ok.png", visualize=False)
    assert status == 200 and body["errorCode"] == 0 and body["result"] == {"instances": [], "image": None}
    assert allowing_server.pipeline.shapes[-1] == (30, 40, 3)


def test_redirects_are_followed_only_to_allowed_targets(allowing_server, web):
    before = len(allowing_server.pipeline.shapes)
    status, body = post(allowing_server, web + "/to-ok", visualize=False)
    assert status == 200 and len(allowing_server.pipeline.shapes) == before + 1
    status, body = post(allowing_server, web + "/to-other-loopback")
    assert status == 422 and "127.0.0.2" in body["errorMsg"] and "loopback" in body["errorMsg"]
    status, body = post(allowing_server, web + "/loop")
    assert status == 422 and "redirected more than 3 times" in body["errorMsg"]


def test_download_size_and_time_are_capped(allowing_server, web):
    for path in ("/big.png", "/big-unannounced.png"):
        status, body = post(allowing_server, web + path)
        assert status == 413 and "larger than 100000 bytes" in body["errorMsg"], path
    started = time.monotonic()
    status, body = post(allowing_server, web + "/slow.png")  # 4 s to send it all; the cap is 1 s
    assert status == 422 and "took longer than 1.0 s" in body["errorMsg"]
    assert time.monotonic() - started < 3


def test_url_inputs_can_be_switched_off(web):
    with BackgroundServer(Recorder(), urls=UrlPolicy(enabled=False, allow=["127.0.0.1"]), warmup=False) as server:
        status, body = post(server, web + "/ok.png")
    assert status == 422 and "does not fetch image URLs" in body["errorMsg"]


@pytest.mark.parametrize("url, kind", [
    ("http://10.1.2.3/a.png", "private"),
    ("http://192.168.0.10/a.png", "private"),
    ("http://169.254.169.254/latest/meta-data", "link-local"),
    ("http://[::1]/a.png", "loopback"),
    ("http://[::ffff:127.0.0.1]/a.png", "loopback"),
    ("http://2130706433/a.png", "loopback"),  # 127.0.0.1 written as one number
    ("http://0.0.0.0/a.png", "unspecified"),
    ("http://224.0.0.1/a.png", "multicast"),
])
def test_internal_addresses_are_refused_before_connecting(url, kind):
    guard = UrlGuard(UrlPolicy(), Limits())
    with pytest.raises(RequestError, match=kind) as info:
        guard.check(url)
    assert info.value.status == 422


def test_every_resolved_address_is_checked_and_allow_list_entries(monkeypatch):
    def resolve(host, port, *args, **kwargs):
        table = {"mixed.example": ["93.184.215.14", "10.0.0.7"], "public.example": ["93.184.215.14"]}
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (ip, port)) for ip in table[host]]

    monkeypatch.setattr(socket, "getaddrinfo", resolve)
    guard = UrlGuard(UrlPolicy(), Limits())
    assert guard.check("https://public.example/a.png")[3] == ["93.184.215.14"]
    with pytest.raises(RequestError, match="10.0.0.7, a private address"):
        guard.check("https://mixed.example/a.png")  # one public address does not make the private one safe
    assert UrlGuard(UrlPolicy(allow=["10.0.0.0/8"]), Limits()).check("https://mixed.example/a.png")
    assert UrlGuard(UrlPolicy(allow=["Mixed.Example"]), Limits()).check("https://mixed.example/a.png")
    for bad in ("ftp://public.example/a.png", "http://user:pw@public.example/a.png", "http:///a.png"):
        with pytest.raises(RequestError):
            guard.check(bad)
