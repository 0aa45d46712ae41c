"""Per-client, per-path rate limiting of the auth service, with Better Auth's default rules.

Sign-in, sign-up, change-password and change-email get `auth_max` requests per window; every other
path gets `max`. The key is the client address and the normalised path, so one client never spends
another's budget. Counters live in the `limits` library's storage: memory by default, Redis when
several instances share them.
"""

from __future__ import annotations

import ipaddress
import math
import time
from collections.abc import Iterable

from limits import RateLimitItemPerSecond
from limits.storage import storage_from_string
from limits.aio.strategies import MovingWindowRateLimiter
from starlette.requests import Request

from aibrain.errors import ServiceError

STRICT_PREFIXES = ("/sign-in", "/sign-up", "/change-password", "/change-email")


class TrustedProxies:
    """Resolve the client address: the socket peer, or X-Forwarded-For behind a trusted proxy."""

    def __init__(self, proxies: Iterable[str]) -> None:
        self._networks = [ipaddress.ip_network(proxy, strict=False) for proxy in proxies]

    def _trusted(self, address: str) -> bool:
        try:
            parsed = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(parsed in network for network in self._networks)

    def client_address(self, request: Request) -> str:
        peer = request.client.host if request.client else ""
        if not self._networks or not self._trusted(peer):
            return peer
        forwarded = request.headers.get("x-forwarded-for", "")
        hops = [hop.strip() for hop in forwarded.split(",") if hop.strip()]
        # Walk from the nearest hop back; the first address no trusted proxy vouches for is the client.
        for hop in reversed(hops):
            if not self._trusted(hop):
                try:
                    return str(ipaddress.ip_address(hop))
                except ValueError:
                    return peer
        return hops[0] if hops else peer


class RateLimiter:
    """Count requests per (client address, path) in a moving window and reject the excess with 429."""

    def __init__(self, *, window: int, max_requests: int, auth_max_requests: int, storage_uri: str) -> None:
        uri = storage_uri if storage_uri.startswith("async+") else f"async+{storage_uri}"
        self._limiter = MovingWindowRateLimiter(storage_from_string(uri))
        self._window = window
        self._default = RateLimitItemPerSecond(max_requests, window)
        self._strict = RateLimitItemPerSecond(auth_max_requests, window)

    async def check(self, client: str, path: str) -> None:
        """Record one request; raise a 429 ServiceError when the client is over its budget."""
        rule = self._strict if path.startswith(STRICT_PREFIXES) else self._default
        if await self._limiter.hit(rule, client, path):
            return
        reset_at, _remaining = await self._limiter.get_window_stats(rule, client, path)
        retry_after = str(max(1, math.ceil(reset_at - time.time())))
        raise ServiceError(
            429,
            "TOO_MANY_REQUESTS",
            "Too many requests. Please try again later.",
            headers={"Retry-After": retry_after, "X-Retry-After": retry_after},
        )
