"""The error body both services send: `{"message": ..., "code": ...}` as JSON.

Better Auth puts `message` before `code`; the events API uses the same order so that clients can
share one error parser.
"""

from __future__ import annotations

from collections.abc import Mapping

import msgspec
from starlette.responses import Response

_encoder = msgspec.json.Encoder()


class JSONResponse(Response):
    """A JSON response encoded with msgspec, which is several times faster than the stdlib."""

    media_type = "application/json"

    def render(self, content: object) -> bytes:
        return _encoder.encode(content)


def error_response(
    status: int,
    code: str,
    message: str,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    """Build the JSON error response `{"message", "code"}` with the given status."""
    return JSONResponse({"message": message, "code": code}, status_code=status, headers=headers)


class ServiceError(Exception):
    """An error that a route raises to respond with a JSON error body instead of a 500."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = dict(headers or {})

    def to_response(self) -> JSONResponse:
        return error_response(self.status, self.code, self.message, self.headers)
