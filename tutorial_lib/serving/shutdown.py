"""Graceful shutdown of the served process on ``SIGTERM`` (Kubernetes, systemd, Docker) and ``SIGINT`` (Ctrl-C).

The first signal drains: readiness (``/health``, ``/health/ready``) and new requests get 503 at once, so a load
balancer stops sending; uvicorn stops listening and lets the requests in flight finish (the model thread keeps
serving the queue meanwhile; after ``timeout_graceful_shutdown`` uvicorn cancels what is left), then the lifespan
stops the model thread and the process exits 0. A second signal stops at once.

Two things in plain uvicorn stand in the way:

- uvicorn installs its handlers when it starts, before the model is loaded. The model thread imports paddle, and
  ``import paddle`` replaces the process's ``SIGTERM`` handler with a C++ one that aborts with "FatalError:
  Termination signal" (exit 143, requests in flight cut). So until the model is ready, the handlers are put back on
  the main thread every 0.1 s (a Python ``signal.signal`` after the import wins), and once more after it is ready.
- uvicorn's handler records the signal and raises it again once shut down, so the process would still die by it;
  this one does not record it.
"""
import asyncio
import signal
import threading

import uvicorn

SIGNALS = (signal.SIGINT, signal.SIGTERM)
CHECK_S = 0.1


class GracefulServer(uvicorn.Server):
    """uvicorn's server, draining on the first ``SIGTERM`` / ``SIGINT`` also after paddle is imported; it also stops
    when the model cannot be loaded. ``state``: the app's :class:`~.infra.ServerState`."""

    def __init__(self, config: uvicorn.Config, state):
        super().__init__(config)
        self.state = state

    def handle_exit(self, sig: int, frame) -> None:
        if self.should_exit:
            self.force_exit = True  # asked twice: stop without waiting for the requests in flight
            return
        self.state.draining = True
        self.should_exit = True

    async def serve(self, sockets=None):
        watcher = asyncio.ensure_future(self._watch_model_load())
        try:
            await super().serve(sockets)
        finally:
            watcher.cancel()

    async def _watch_model_load(self):
        """Keep the signal handlers over paddle's until the model is ready; stop if it cannot be loaded."""
        worker = self.state.worker
        main = threading.current_thread() is threading.main_thread()  # signals can be handled there only
        while True:
            settled = worker.ready.is_set() or worker.error is not None  # read first: any import came before
            if main:
                for sig in SIGNALS:
                    signal.signal(sig, self.handle_exit)
            if settled:
                self.should_exit = self.should_exit or not worker.loaded.is_set()
                return
            await asyncio.sleep(CHECK_S)
