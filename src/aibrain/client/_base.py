"""State and decisions that Client and AsyncClient share. Nothing here does I/O."""

from __future__ import annotations

import base64
import binascii
import time
from collections.abc import Callable
from http.cookiejar import CookieJar, DefaultCookiePolicy
from typing import Any

import httpx
import msgspec

from aibrain import __version__
from aibrain.client._exceptions import AuthenticationError, error_from_response

AUTH_BASE_PATH = "/api/auth"
DEFAULT_AUTH_URL = "http://127.0.0.1:3000"
DEFAULT_API_URL = "http://127.0.0.1:8080"
DEFAULT_TIMEOUT = 10.0
USER_AGENT = f"aibrain-client/{__version__} python-httpx/{httpx.__version__}"

# A JWT is refreshed once fewer than this many seconds of its life remain, so that a request sent
# just before expiry does not arrive just after it. A JWT whose whole lifetime is shorter than this is
# refreshed before every request.
REFRESH_MARGIN = 60.0

Clock = Callable[[], float]


def jwt_expiry(jwt: str) -> float | None:
    """Read the `exp` claim without verifying the signature, which is the server's job.

    Return None when the token is not a JWT with a numeric `exp`. The client then sends such a token
    as is and refreshes it only after a 401 TOKEN_EXPIRED from the API.
    """
    parts = jwt.split(".")
    if len(parts) != 3:
        return None
    payload = parts[1] + "=" * (-len(parts[1]) % 4)
    try:
        claims = msgspec.json.decode(base64.urlsafe_b64decode(payload))
    except (binascii.Error, ValueError, msgspec.DecodeError):
        return None
    exp = claims.get("exp") if isinstance(claims, dict) else None
    if isinstance(exp, bool) or not isinstance(exp, int | float):
        return None
    return float(exp)


def require_credentials(jwt: str | None, session_token: str | None) -> None:
    """Raise AuthenticationError before sending a request that could only get 401 MISSING_TOKEN."""
    if jwt is None and session_token is None:
        raise AuthenticationError(
            401,
            "NOT_SIGNED_IN",
            "this client is not signed in; call sign_in() or sign_up() first, or pass token= or jwt=",
        )


def bearer(token: str | None) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"} if token is not None else {}


def no_cookies() -> CookieJar:
    """Return a cookie jar that stores nothing.

    The auth service sets session cookies, and it rejects a request that carries cookies but no
    trusted Origin header (403 MISSING_OR_NULL_ORIGIN). The SDK authenticates with bearer tokens
    only, so it must never send those cookies back.
    """
    # Hand httpx the CookieJar itself: wrapped in httpx.Cookies, it would be copied into a default jar.
    return CookieJar(policy=DefaultCookiePolicy(allowed_domains=[]))


def checked(response: httpx.Response, clock: Clock) -> httpx.Response:
    """Return a 2xx response, or raise the matching APIError for any other status."""
    if response.is_success:
        return response
    raise error_from_response(response, clock)


def is_expired_jwt(response: httpx.Response) -> bool:
    """Tell whether the events API rejected the request's JWT only because it expired."""
    if response.status_code != 401:
        return False
    try:
        body = msgspec.json.decode(response.content)
    except msgspec.DecodeError:
        return False
    return isinstance(body, dict) and body.get("code") == "TOKEN_EXPIRED"


def page_params(type: str | None, limit: int, cursor: str | None) -> dict[str, Any]:
    params: dict[str, Any] = {"limit": limit}
    if type is not None:
        params["type"] = type
    if cursor is not None:
        params["cursor"] = cursor
    return params


class ClientState:
    """The URLs, clock and credentials of a client, with the refresh decisions of both clients."""

    def __init__(
        self,
        auth_url: str,
        api_url: str,
        *,
        token: str | None,
        jwt: str | None,
        clock: Clock | None,
    ) -> None:
        auth_url = auth_url.rstrip("/")
        if not auth_url.endswith(AUTH_BASE_PATH):
            auth_url += AUTH_BASE_PATH
        self.auth_url = auth_url
        self.api_url = api_url.rstrip("/")
        self.clock: Clock = clock or time.time
        self.session_token = token
        self.jwt: str | None = None
        self.jwt_expires_at: float | None = None
        if jwt is not None:
            self.set_jwt(jwt)

    def set_jwt(self, jwt: str | None) -> None:
        self.jwt = jwt
        self.jwt_expires_at = jwt_expiry(jwt) if jwt is not None else None

    def sign_out(self) -> None:
        self.session_token = None
        self.set_jwt(None)

    def needs_refresh(self) -> bool:
        """Tell whether to fetch a JWT before the next API request: none yet, or close to expiry."""
        if self.session_token is None:
            return False
        if self.jwt is None:
            return True
        return self.jwt_expires_at is not None and self.jwt_expires_at - self.clock() < REFRESH_MARGIN

    def replacement_for(self, used_jwt: str | None) -> str | None:
        """Return the JWT that another thread or task stored while this one waited, if any."""
        if self.jwt is not None and self.jwt != used_jwt:
            return self.jwt
        return None

    def describe(self, cls: type) -> str:
        signed_in = self.session_token is not None or self.jwt is not None
        return f"<{cls.__name__} auth_url={self.auth_url!r} api_url={self.api_url!r} signed_in={signed_in}>"
