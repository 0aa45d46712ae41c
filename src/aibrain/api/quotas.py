"""Per-user write budgets of the events API: events per minute and stored bytes per day.

A runaway agent loop should hit a clear 429 long before it fills the disk. The counters are fixed
windows in the `limits` library's storage (memory by default, so each API process counts its own
users, while a shared Redis URL makes several processes share them).
"""

from __future__ import annotations

import math
import time

from limits import RateLimitItem, RateLimitItemPerDay, RateLimitItemPerMinute
from limits.aio.strategies import FixedWindowRateLimiter
from limits.storage import storage_from_string

from aibrain.errors import ServiceError


class WriteQuota:
    """Charge each stored event against its user's budgets; raise a 429 when one is spent.

    A budget of 0 means unlimited. The 429 carries `Retry-After` and the user's remaining budgets in
    `X-Quota-Events-Remaining` and `X-Quota-Bytes-Remaining`.
    """

    def __init__(self, *, events_per_minute: int, bytes_per_day: int, storage_uri: str = "memory://") -> None:
        uri = storage_uri if storage_uri.startswith("async+") else f"async+{storage_uri}"
        self._limiter = FixedWindowRateLimiter(storage_from_string(uri))
        self._events = RateLimitItemPerMinute(events_per_minute) if events_per_minute > 0 else None
        self._bytes = RateLimitItemPerDay(bytes_per_day) if bytes_per_day > 0 else None

    @property
    def enabled(self) -> bool:
        return self._events is not None or self._bytes is not None

    async def charge(self, user: str, size: int) -> None:
        """Count one event of `size` bytes for `user`, or raise ServiceError(429) without counting it."""
        if self._events is not None and not await self._limiter.test(self._events, user):
            await self._reject(user, "events per minute", self._events)
        if self._bytes is not None and not await self._limiter.test(self._bytes, user, cost=size):
            await self._reject(user, "bytes per day", self._bytes)
        if self._events is not None:
            await self._limiter.hit(self._events, user)
        if self._bytes is not None:
            await self._limiter.hit(self._bytes, user, cost=size)

    async def _remaining(self, item: RateLimitItem | None, user: str) -> tuple[int, float]:
        if item is None:
            return -1, 0.0
        stats = await self._limiter.get_window_stats(item, user)
        return max(0, stats.remaining), stats.reset_time

    async def _reject(self, user: str, budget: str, item: RateLimitItem) -> None:
        events_left, _ = await self._remaining(self._events, user)
        bytes_left, _ = await self._remaining(self._bytes, user)
        _, reset_at = await self._remaining(item, user)
        retry_after = max(1, math.ceil(reset_at - time.time()))
        headers = {"Retry-After": str(retry_after)}
        if events_left >= 0:
            headers["X-Quota-Events-Remaining"] = str(events_left)
        if bytes_left >= 0:
            headers["X-Quota-Bytes-Remaining"] = str(bytes_left)
        raise ServiceError(
            429,
            "QUOTA_EXCEEDED",
            f"this user's budget of {item.amount} {budget} is spent; retry after {retry_after} s "
            "or raise AIBRAIN_USER_EVENTS_PER_MINUTE / AIBRAIN_USER_BYTES_PER_DAY",
            headers=headers,
        )
