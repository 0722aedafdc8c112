"""The HTTP server in a background thread of this process (notebooks, tests), and a free-port helper."""
import threading
import time

from ..errors import UserError


def free_port(host="127.0.0.1"):
    """A TCP port nobody listens on right now."""
    import socket

    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


class BackgroundServer:
    """The HTTP server in a background thread of this process, e.g. in a notebook::

        with BackgroundServer(pipeline) as server:
            Client(server.url).predict("scene.png")

    ``port=0`` takes a free port. :meth:`start` returns once the port answers and, with ``wait_ready``
    (default), once the model is warmed up. ``stop()`` (or leaving the ``with`` block) shuts it down and frees
    the port. Other keyword arguments go to :func:`~tutorial_lib.serving.create_app` (``urls``, ``batching``...).
    """

    def __init__(self, pipeline, host="127.0.0.1", port=0, limits=None, visualize=True, log_level="warning",
                 **app_options):
        import uvicorn

        from .app import create_app

        port = port or free_port(host)
        self.url = f"http://{host}:{port}"
        self.app = create_app(pipeline, limits, visualize, **app_options)
        config = uvicorn.Config(self.app, host=host, port=port, log_level=log_level)
        self._server = uvicorn.Server(config)
        self._thread = None

    def start(self, timeout_s=60, wait_ready=True):
        self._thread = threading.Thread(target=self._server.run, name="tutorial_lib-serving", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout_s
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise UserError(f"the server did not start on {self.url} (port taken?)")
            time.sleep(0.05)
        worker = self.app.state.worker
        while wait_ready and not worker.ready.is_set():
            if worker.error or time.monotonic() > deadline:
                self.stop()
                raise UserError(f"the server on {self.url} did not get ready: {worker.status}")
            time.sleep(0.05)
        return self

    def stop(self):
        self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(30)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
