"""Turn the `Authorization: Bearer <JWT>` header of a request into a verified Identity.

This is the one place where token failures become HTTP responses: 401 with a `WWW-Authenticate`
challenge (RFC 6750) for a missing or rejected token, and 503 `AUTH_UNAVAILABLE` with
`Retry-After` while no signing key is known.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Final

from starlette.requests import Request

from aibrain.api.tokens import AuthUnavailableError, Identity, TokenError, TokenVerifier
from aibrain.errors import ServiceError
from aibrain.logs import shorten

logger = logging.getLogger(__name__)

CHALLENGE_MISSING: Final = {"WWW-Authenticate": 'Bearer realm="aibrain"'}
CHALLENGE_INVALID: Final = {"WWW-Authenticate": 'Bearer realm="aibrain", error="invalid_token"'}
RETRY_AFTER_SECONDS: Final = 5


class RejectionLog:
    """Log rejected tokens at WARNING, at most `limit` lines per `window` seconds.

    Rejections beyond the limit are counted and reported in one line when the window ends, so a
    flood of bad tokens cannot flood the log.
    """

    def __init__(self, clock: Callable[[], float], *, limit: int = 20, window: float = 60.0) -> None:
        self._clock = clock
        self._limit = limit
        self._window = window
        self._window_start = clock()
        self._logged = 0
        self._suppressed = 0

    def warn(self, code: str, message: str, kid: object) -> None:
        now = self._clock()
        if now - self._window_start >= self._window:
            if self._suppressed:
                logger.warning("%d more rejected tokens were not logged in the last %.0f s", self._suppressed, self._window)
            self._window_start = now
            self._logged = 0
            self._suppressed = 0

        if self._logged >= self._limit:
            self._suppressed += 1
            return
        self._logged += 1
        logger.warning("rejected token (kid %s): %s: %s", shorten(kid), code, message)


class Authenticator:
    """Check the bearer token of each request with a TokenVerifier."""

    def __init__(self, verifier: TokenVerifier, *, max_token_bytes: int, clock: Callable[[], float]) -> None:
        self._verifier = verifier
        self._max_token_bytes = max_token_bytes
        self._rejections = RejectionLog(clock)

    def _token(self, request: Request) -> str:
        header = request.headers.get("authorization")
        if header is None:
            raise ServiceError(401, "MISSING_TOKEN", "send a JWT as Authorization: Bearer <token>", CHALLENGE_MISSING)
        if len(header) > self._max_token_bytes + len("Bearer "):
            raise self._rejected(TokenError("INVALID_TOKEN", f"token is longer than {self._max_token_bytes} bytes"))

        scheme, _, token = header.strip().partition(" ")
        if scheme.lower() != "bearer":
            raise ServiceError(401, "MISSING_TOKEN", "the Authorization scheme must be Bearer", CHALLENGE_MISSING)
        token = token.strip(" ")
        if not token:
            raise ServiceError(401, "MISSING_TOKEN", "the Bearer token is empty", CHALLENGE_MISSING)
        return token

    async def identify(self, request: Request) -> Identity:
        """Return the verified identity of the request, or raise the ServiceError to respond with."""
        token = self._token(request)
        identity = self._verifier.cached(token)
        if identity is not None:
            return identity

        try:
            return await self._verifier.verify(token)
        except TokenError as exc:
            raise self._rejected(exc) from None
        except AuthUnavailableError:
            raise ServiceError(
                503,
                "AUTH_UNAVAILABLE",
                "no signing keys could be fetched from the auth server yet; retry shortly",
                {"Retry-After": str(RETRY_AFTER_SECONDS)},
            ) from None

    def _rejected(self, exc: TokenError) -> ServiceError:
        self._rejections.warn(exc.code, exc.message, exc.kid)
        return ServiceError(401, exc.code, exc.message, CHALLENGE_INVALID)
