"""The two ASGI middlewares around every route: the body-size limit and the request metrics.

Both are plain ASGI (not Starlette's ``BaseHTTPMiddleware``): the limit must see the body as it streams in, before
anything parses it, and the metrics must see the status of answers that never reach a route (404, 413).
"""
import time

from .errors import envelope, respond


class BodyLimit:
    """A request body over ``max_bytes`` gets 413 before the app parses any of it (declared or streamed size)."""

    def __init__(self, app, max_bytes):
        self.app, self.max_bytes = app, max_bytes

    async def _refuse(self, scope, receive, send):
        await respond(envelope(413, f"request body is larger than {self.max_bytes} bytes"))(scope, receive, send)

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["method"] not in ("POST", "PUT", "PATCH"):
            return await self.app(scope, receive, send)
        declared = dict(scope["headers"]).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.max_bytes:
            return await self._refuse(scope, receive, send)
        chunks, size, more = [], 0, True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return None
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                return await self._refuse(scope, receive, send)
            chunks.append(chunk)
            more = message.get("more_body", False)
        body, replayed = b"".join(chunks), False

        async def replay():
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        return await self.app(scope, replay, send)


class Observe:
    """Requests by route and status, latency to the response's first byte, requests in flight."""

    def __init__(self, app, metrics):
        self.app, self.metrics = app, metrics

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started, seen = time.perf_counter(), []

        async def watch(message):
            if message["type"] == "http.response.start" and not seen:
                seen.append(message["status"])
                self.metrics.observe(scope["path"], message["status"], started)
            await send(message)

        self.metrics.in_flight.inc()
        try:
            await self.app(scope, receive, watch)
        except BaseException:
            if not seen:
                self.metrics.observe(scope["path"], 500, started)
            raise
        finally:
            self.metrics.in_flight.dec()
