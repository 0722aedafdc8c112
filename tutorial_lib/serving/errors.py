"""The error a request handler raises: an HTTP status and a message for the client (PaddleX's envelope)."""


class RequestError(Exception):
    def __init__(self, status, message):
        super().__init__(message)
        self.status, self.message = status, message
