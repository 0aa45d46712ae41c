"""In-memory cache of the auth server's signing keys (JWKS), refreshed in the background.

The cache keeps the last good key set whenever a fetch fails, times out, returns something that
is not a JWKS, or returns no usable key, so a broken auth server never logs everybody out. An
unknown `kid` triggers at most one refetch per cooldown window, and concurrent requests share that
one fetch (single flight).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass

import httpx
import msgspec

from aibrain.api.keys import VerificationKey, parse_key_set
from aibrain.logs import shorten

logger = logging.getLogger(__name__)

MAX_JWKS_BYTES = 1_048_576
NO_KEYS_FIRST_RETRY = 1.0
NO_KEYS_MAX_RETRY = 30.0


class JwksStats(msgspec.Struct):
    """Counters that `GET /health` reports under "jwks"."""

    keys: int
    kids: list[str]
    age_seconds: float | None
    hits: int
    misses: int
    refreshes: int
    failures: int


class JwksFetchError(Exception):
    """Raised inside the cache when one fetch returns no usable key set, so the old set stays."""


@dataclass(slots=True)
class _KeyIndex:
    by_kid: dict[str, VerificationKey]
    by_alg: dict[str, list[VerificationKey]]
    thumbprints: frozenset[str]


def _index(keys: list[VerificationKey]) -> _KeyIndex:
    by_alg: dict[str, list[VerificationKey]] = {}
    for key in keys:
        by_alg.setdefault(key.alg, []).append(key)
    by_kid = {key.kid: key for key in keys if key.kid is not None}
    return _KeyIndex(by_kid=by_kid, by_alg=by_alg, thumbprints=frozenset(key.thumbprint for key in keys))


class JwksCache:
    """Signing keys of one JWKS URL, with background refresh and rate-limited refetches.

    `clock` returns seconds (time.time in production); every age and cooldown is measured with it.
    `on_keys_removed` runs after a refresh drops a key, so that tokens it signed stop being trusted.
    """

    def __init__(
        self,
        url: str,
        client: httpx.AsyncClient,
        *,
        refresh_interval: float,
        refetch_cooldown: float,
        fetch_timeout: float,
        clock: Callable[[], float],
    ) -> None:
        self.url = url
        self._client = client
        self._refresh_interval = refresh_interval
        self._refetch_cooldown = refetch_cooldown
        self._fetch_timeout = fetch_timeout
        self._clock = clock
        self._index = _index([])
        self._fetched_at: float | None = None
        self._last_refetch: float | None = None
        self._inflight: asyncio.Task[bool] | None = None
        self._task: asyncio.Task[None] | None = None
        self._listeners: list[Callable[[], None]] = []
        self.hits = 0
        self.misses = 0
        self.refreshes = 0
        self.failures = 0

    @property
    def has_keys(self) -> bool:
        return bool(self._index.thumbprints)

    def on_keys_removed(self, listener: Callable[[], None]) -> None:
        """Register a callback that runs whenever a refresh removes at least one key."""
        self._listeners.append(listener)

    def get(self, kid: str) -> VerificationKey | None:
        """Return the key with this kid, counting a hit or a miss."""
        key = self._index.by_kid.get(kid)
        if key is None:
            self.misses += 1
        else:
            self.hits += 1
        return key

    def keys_for_algorithm(self, alg: str) -> list[VerificationKey]:
        """Return every usable key of one algorithm, for tokens that name no kid."""
        return list(self._index.by_alg.get(alg, ()))

    def stats(self) -> JwksStats:
        age = None if self._fetched_at is None else max(0.0, self._clock() - self._fetched_at)
        return JwksStats(
            keys=len(self._index.thumbprints),
            kids=sorted(self._index.by_kid),
            age_seconds=age,
            hits=self.hits,
            misses=self.misses,
            refreshes=self.refreshes,
            failures=self.failures,
        )

    async def start(self) -> None:
        """Fetch the keys once and start the background refresh. A failed first fetch is only logged."""
        await self.refresh()
        self._task = asyncio.create_task(self._refresh_forever(), name="jwks-refresh")

    async def close(self) -> None:
        """Stop the background refresh and any refetch still running."""
        for task in (self._task, self._inflight):
            if task is not None and not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._task = None
        self._inflight = None

    async def _refresh_forever(self) -> None:
        retry_delay = NO_KEYS_FIRST_RETRY
        while True:
            if self.has_keys:
                retry_delay = NO_KEYS_FIRST_RETRY
                await asyncio.sleep(self._refresh_interval)
            else:
                # With no keys every request fails with 503, so retry soon (1 s, doubling up to 30 s)
                # instead of waiting a whole refresh interval for the auth server to come back.
                await asyncio.sleep(min(retry_delay, self._refresh_interval))
                retry_delay = min(retry_delay * 2, NO_KEYS_MAX_RETRY)
                logger.info("JWKS has no keys yet; retrying the fetch from %s", self.url)
            try:
                await self.refresh()
            except Exception:
                # Keep refreshing after a bug in one round rather than freezing the key set forever.
                logger.exception("JWKS refresh from %s failed unexpectedly", self.url)

    async def refresh(self) -> bool:
        """Fetch the JWKS now and install it when it has a usable key. Return whether it was installed."""
        try:
            keys = await asyncio.wait_for(self._fetch(), timeout=self._fetch_timeout)
        except (JwksFetchError, httpx.HTTPError, TimeoutError) as exc:
            self.failures += 1
            reason = str(exc) or type(exc).__name__
            logger.warning("JWKS fetch from %s failed, keeping %d cached keys: %s", self.url, self.stats().keys, reason)
            return False

        self._install(keys)
        return True

    async def _fetch(self) -> list[VerificationKey]:
        async with self._client.stream("GET", self.url, timeout=self._fetch_timeout) as response:
            if response.status_code != 200:
                raise JwksFetchError(f"HTTP status {response.status_code}")
            body = bytearray()
            async for chunk in response.aiter_bytes():
                body += chunk
                if len(body) > MAX_JWKS_BYTES:
                    raise JwksFetchError(f"response is larger than {MAX_JWKS_BYTES} bytes")

        try:
            parsed = parse_key_set(bytes(body))
        except ValueError as exc:
            raise JwksFetchError(str(exc)) from exc
        for reason in parsed.skipped:
            logger.warning("JWKS from %s: skipped unusable %s", self.url, shorten(reason, 200))
        if not parsed.keys:
            raise JwksFetchError("the JWKS has no usable signing key")
        return parsed.keys

    def _install(self, keys: list[VerificationKey]) -> None:
        old = self._index
        self._index = _index(keys)
        self._fetched_at = self._clock()
        self.refreshes += 1

        if old.thumbprints - self._index.thumbprints:
            for listener in self._listeners:
                listener()
        if old.thumbprints != self._index.thumbprints:
            logger.info("JWKS from %s now has %d keys: kids %s", self.url, len(keys), shorten(sorted(self._index.by_kid), 200))

    async def refetch(self) -> bool:
        """Refetch the JWKS for an unknown kid, at most once per cooldown, sharing one fetch between callers.

        Returns whether a fetch ran (by this caller or one it joined) and installed new keys.
        """
        if self._inflight is not None:
            return await asyncio.shield(self._inflight)

        now = self._clock()
        if self._last_refetch is not None and now - self._last_refetch < self._refetch_cooldown:
            return False
        self._last_refetch = now
        self._inflight = asyncio.create_task(self._refetch_once(), name="jwks-refetch")
        return await asyncio.shield(self._inflight)

    async def _refetch_once(self) -> bool:
        try:
            return await self.refresh()
        finally:
            self._inflight = None
