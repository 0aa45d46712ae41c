"""The SDK's exception tree; every exception it raises derives from AIBrainError.

    AIBrainError
    ├── TransportError          no HTTP response arrived (refused, timed out, connection broken)
    ├── DecodeError             a 2xx response whose body is not the documented JSON
    └── APIError                an error response, usually the JSON body {"message", "code"}
        ├── AuthenticationError     401
        ├── PermissionDenied        403
        ├── NotFound                404
        ├── Conflict                409, or 422 for an email that already has an account
        ├── RateLimited             429
        └── ServiceUnavailable      503
"""

from __future__ import annotations

import email.utils
import time
from collections.abc import Callable

import httpx
import msgspec

# Maximum length, in characters, of the part of a non-JSON error body quoted in a message.
MAX_QUOTED_BODY = 200


class AIBrainError(Exception):
    """Base class of every exception the SDK raises."""


class TransportError(AIBrainError):
    """Raised when a request gets no HTTP response; `__cause__` is the httpx exception."""

    def __init__(self, method: str, url: str, reason: str) -> None:
        super().__init__(f"{method} {url} failed: {reason}")
        self.method = method
        self.url = url


class DecodeError(AIBrainError):
    """Raised when a successful response has a body that is not the JSON the service documents."""


class APIError(AIBrainError):
    """Raised for an error response: `status`, the machine `code` and the server's `message`.

    `code` is None when the body was not the service's JSON error, for example an HTML page from a
    proxy. `message` then quotes the start of the body. `retry_after` is the Retry-After header in
    seconds, or None when the server sent none.
    """

    def __init__(self, status: int, code: str | None, message: str, *, retry_after: float | None = None) -> None:
        label = code if code is not None else "no error code"
        super().__init__(f"HTTP {status} {label}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.retry_after = retry_after


class AuthenticationError(APIError):
    """Raised on 401: wrong email or password, a missing, invalid or expired token, or an ended session."""


class PermissionDenied(APIError):
    """Raised on 403, for example a request from an origin the auth service does not trust."""


class NotFound(APIError):
    """Raised on 404: the path does not exist on the service the client points at."""


class Conflict(APIError):
    """Raised on 409, and on 422 USER_ALREADY_EXISTS_USE_ANOTHER_EMAIL when signing up a taken email."""


class RateLimited(APIError):
    """Raised on 429; wait `retry_after` seconds (when not None) before sending again."""


class ServiceUnavailable(APIError):
    """Raised on 503, for example AUTH_UNAVAILABLE while the API has no signing keys yet."""


_BY_STATUS: dict[int, type[APIError]] = {
    401: AuthenticationError,
    403: PermissionDenied,
    404: NotFound,
    409: Conflict,
    429: RateLimited,
    503: ServiceUnavailable,
}


class _ErrorBody(msgspec.Struct):
    message: str
    code: str


def _retry_after(value: str | None, clock: Callable[[], float]) -> float | None:
    """Read Retry-After as delay seconds or as an HTTP date (RFC 9110, section 10.2.3)."""
    if value is None:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():
        return float(value)
    try:
        moment = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, moment.timestamp() - clock())


def _describe_body(response: httpx.Response) -> str:
    """Describe a non-JSON error body by the reason phrase and the start of its text."""
    reason = response.reason_phrase or "error"
    text = " ".join(response.text.split())
    if not text:
        return reason
    if len(text) > MAX_QUOTED_BODY:
        text = text[:MAX_QUOTED_BODY] + "..."
    return f"{reason} ({text})"


def error_from_response(response: httpx.Response, clock: Callable[[], float] = time.time) -> APIError:
    """Build the APIError subclass for an error response, whatever its body contains."""
    status = response.status_code
    try:
        body = msgspec.json.decode(response.content, type=_ErrorBody)
        code: str | None = body.code
        message = body.message
    except msgspec.DecodeError:
        code = None
        message = _describe_body(response)

    cls = _BY_STATUS.get(status, APIError)
    if status == 422 and code is not None and code.startswith("USER_ALREADY_EXISTS"):
        cls = Conflict
    return cls(status, code, message, retry_after=_retry_after(response.headers.get("retry-after"), clock))


def transport_error(exc: httpx.TransportError, method: str, url: str) -> TransportError:
    """Wrap an httpx network error, naming its class and reason (which never contain a header)."""
    reason = str(exc) or "no reason given"
    return TransportError(method, url, f"{type(exc).__name__}: {reason}")
