"""Origin and CSRF rules for POST requests, as Better Auth 1.7 applies them.

1. Any POST that carries a Cookie header must name a trusted Origin (or Referer).
2. Sign-in and sign-up also apply the rule when Sec-Fetch-* headers show a browser, and always
   check an Origin that is present. A plain server-to-server call with neither passes.
3. URL fields such as callbackURL must be relative paths or on a trusted origin.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable
from urllib.parse import urlsplit

from starlette.datastructures import Headers

from aibrain.errors import ServiceError

URL_FIELDS = {
    "callbackURL": ("INVALID_CALLBACK_URL", "Invalid callbackURL"),
    "redirectTo": ("INVALID_REDIRECT_URL", "Invalid redirectURL"),
    "errorCallbackURL": ("INVALID_ERROR_CALLBACK_URL", "Invalid errorCallbackURL"),
    "newUserCallbackURL": ("INVALID_NEW_USER_CALLBACK_URL", "Invalid newUserCallbackURL"),
}


def origin_of(url: str) -> str | None:
    parts = urlsplit(url)
    if not parts.scheme or not parts.netloc:
        return None
    return f"{parts.scheme}://{parts.netloc}".lower()


class OriginPolicy:
    """Decide whether a POST's Origin, Referer and URL fields are acceptable."""

    def __init__(self, own_origin: str, extra_origins: Iterable[str] = ()) -> None:
        self.own_origin = own_origin.lower()
        self.patterns = [self.own_origin, *(pattern.rstrip("/").lower() for pattern in extra_origins)]

    def is_trusted(self, url: str) -> bool:
        origin = origin_of(url)
        if origin is None:
            return False
        return any(origin == pattern or fnmatch.fnmatchcase(origin, pattern) for pattern in self.patterns)

    def _claimed_origin(self, headers: Headers) -> str | None:
        origin = headers.get("origin")
        if origin == "null" and headers.get("sec-fetch-site") == "same-origin":
            return self.own_origin
        return origin or headers.get("referer")

    def _require_trusted(self, headers: Headers) -> None:
        claimed = self._claimed_origin(headers)
        if not claimed or claimed == "null":
            raise ServiceError(403, "MISSING_OR_NULL_ORIGIN", "Missing or null Origin")
        if not self.is_trusted(claimed):
            raise ServiceError(403, "INVALID_ORIGIN", "Invalid origin")

    def check_post(self, headers: Headers) -> None:
        """Apply the generic rule: a request with cookies must come from a trusted origin."""
        if "cookie" in headers:
            self._require_trusted(headers)

    def check_sign_in(self, headers: Headers) -> None:
        """Apply the stricter rule of sign-in and sign-up against login CSRF."""
        if "cookie" in headers:
            self._require_trusted(headers)
            return
        site = headers.get("sec-fetch-site")
        mode = headers.get("sec-fetch-mode")
        if site is not None or mode is not None or "sec-fetch-dest" in headers:
            if site == "cross-site" and mode == "navigate":
                raise ServiceError(
                    403,
                    "CROSS_SITE_NAVIGATION_LOGIN_BLOCKED",
                    "Cross-site navigation login blocked. This request appears to be a CSRF attack.",
                )
            self._require_trusted(headers)
            return
        if headers.get("origin") or headers.get("referer"):
            self._require_trusted(headers)

    def check_url_fields(self, body: object) -> None:
        if not isinstance(body, dict):
            return
        for field, (code, message) in URL_FIELDS.items():
            value = body.get(field)
            if isinstance(value, str) and value and not self._url_allowed(value):
                raise ServiceError(403, code, message)

    def _url_allowed(self, url: str) -> bool:
        if url.startswith("/") and not url.startswith("//") and "\\" not in url:
            return True
        return self.is_trusted(url)
