"""PaddleX's answer envelope ``{logId, errorCode, errorMsg, result?}`` and the error a request handler raises.

Every answer of the server, success or failure, middleware or route, goes out through :func:`respond`, so the
envelope and its headers (``Retry-After`` on 503) are the same everywhere.
"""
import json
import uuid


class RequestError(Exception):
    def __init__(self, status, message):
        super().__init__(message)
        self.status, self.message = status, message


def envelope(status: int, message: str, result=None) -> dict:
    """PaddleX's response body: ``errorCode`` 0 for success, else the HTTP status."""
    body = {"logId": str(uuid.uuid4()), "errorCode": 0 if status == 200 else status, "errorMsg": message}
    if result is not None:
        body["result"] = result
    return body


def respond(body: dict):
    """An :func:`envelope` as a JSON response with its HTTP status; a 503 says when to retry."""
    from starlette.responses import Response

    status = 200 if body["errorCode"] == 0 else body["errorCode"]
    headers = {"Retry-After": "1"} if status == 503 else None
    return Response(json.dumps(body), status_code=status, media_type="application/json", headers=headers)
