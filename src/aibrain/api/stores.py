"""A bounded LRU of open per-user event stores, with their SQLite calls run on worker threads.

Opening a store costs about 1.5 ms and a kept connection makes an insert cost tens of
microseconds, so the pool keeps up to `store_cache_size` connections open. A store in use by a
request is never closed: eviction skips it. The limit counts stores in use too, so a request for
a new user waits while every open store is busy, and the limit is lowered to fit the process's
open-file limit. Each store uses three descriptors: the database, its WAL and its -shm file.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TypeVar

from aibrain.api.storage import EventRow, EventStore, StorageError, user_dir_name

logger = logging.getLogger(__name__)

T = TypeVar("T")

# Threads that run SQLite calls. Calls on one store are serialised by its lock; more threads let
# different users' writes wait on their own fsyncs in parallel.
STORE_THREADS = 4

# Descriptors per open store (database, -wal, -shm), and the share of the process's open-file
# limit that stores may use. The rest is for client sockets, the JWKS client and the log.
DESCRIPTORS_PER_STORE = 3
STORE_SHARE_OF_DESCRIPTORS = 0.5


def descriptor_capped(max_open: int) -> int:
    """Lower `max_open` so that open stores use at most half of RLIMIT_NOFILE's soft limit."""
    try:
        import resource

        soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    except (ImportError, OSError, ValueError):
        return max_open
    if soft == resource.RLIM_INFINITY:
        return max_open
    return max(1, min(max_open, int(soft * STORE_SHARE_OF_DESCRIPTORS) // DESCRIPTORS_PER_STORE))


class _Entry:
    __slots__ = ("store", "users")

    def __init__(self, store: EventStore) -> None:
        self.store = store
        self.users = 0


class StorePool:
    """Open event stores keyed by user directory, least recently used first."""

    def __init__(
        self,
        users_dir: Path,
        *,
        max_open: int,
        synchronous: str,
        busy_timeout_ms: int,
        clock: Callable[[], float],
    ) -> None:
        self.users_dir = users_dir
        self.max_open = descriptor_capped(max_open)
        if self.max_open < max_open:
            logger.warning(
                "keeping at most %d event stores open instead of %d, to fit the open-file limit; "
                "raise it with ulimit -n to keep more",
                self.max_open,
                max_open,
            )
        self._slots = asyncio.Semaphore(self.max_open)
        self._waiting = 0
        self._closing = 0
        self._background: set[asyncio.Task[None]] = set()
        self._synchronous = synchronous
        self._busy_timeout_ms = busy_timeout_ms
        self._clock = clock
        self._entries: OrderedDict[str, _Entry] = OrderedDict()
        self._opening: dict[str, asyncio.Future[None]] = {}
        self._executor = ThreadPoolExecutor(max_workers=STORE_THREADS, thread_name_prefix="event-store")

    @property
    def open_count(self) -> int:
        return len(self._entries)

    def is_open(self, sub: str) -> bool:
        return user_dir_name(sub) in self._entries

    def path_for(self, sub: str) -> Path:
        """Return the events.db path of a user, which always lies inside users_dir."""
        return self.users_dir / user_dir_name(sub) / "events.db"

    async def run(self, function: Callable[..., T], *args: object) -> T:
        """Run a blocking store call on a worker thread."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, function, *args)

    async def read_page(
        self, store: EventStore, event_type: str | None, limit: int, after: tuple[str, int] | None
    ) -> list[EventRow]:
        """Read a page on the event loop when the connection is free, else on a worker thread.

        A read in WAL mode does not wait for writers. A page of 50 events took about 70 us on the
        loop against about 300 us through a worker thread (2 busy cores), so the hop is only paid
        while a write is using the connection.
        """
        rows = store.page(event_type, limit, after, blocking=False)
        if rows is None:
            rows = await self.run(store.page, event_type, limit, after)
        assert rows is not None
        return rows

    @asynccontextmanager
    async def acquire(self, sub: str) -> AsyncIterator[EventStore]:
        """Yield the open store of a user, opening it on first use. It stays open while in use.

        A store whose use raised a read-only error, or that was opened as a read-only snapshot, is
        closed after use, so that the next request reopens the file and finds a repaired folder.
        """
        name = user_dir_name(sub)
        entry = self._entries.get(name)
        while entry is None:
            await self._open_with_slot(name)
            # Another request may evict the store between its opening and this line; open it again then.
            entry = self._entries.get(name)
        self._entries.move_to_end(name)

        entry.users += 1
        discard = entry.store.read_only
        try:
            yield entry.store
        except StorageError as exc:
            discard = discard or exc.read_only
            raise
        finally:
            entry.users -= 1
            if discard and entry.users == 0 and self._entries.get(name) is entry:
                self._close_in_background(name)
            elif self._waiting > self._closing:
                # A request for a new user waits for a slot that no pending close will free.
                self._evict_idle()

    async def _open_with_slot(self, name: str) -> None:
        """Open a user's store under a slot of the limit, or join an open already under way.

        Slots are an asyncio.Semaphore, which serves waiters first come, first served. A slot is
        given back only once its store is closed, so open descriptors stay within the limit.
        """
        if name in self._opening:
            await self._open(name)
            return
        if self._slots.locked():
            self._evict_idle()
        self._waiting += 1
        try:
            await self._slots.acquire()
        finally:
            self._waiting -= 1
        if name in self._entries or name in self._opening:
            self._slots.release()  # Another request opened it while this one waited.
            return
        try:
            await self._open(name)
        except BaseException:
            self._slots.release()
            raise

    def _evict_idle(self) -> None:
        """Start closing the least recently used store that no request uses, if there is one."""
        victim = next((name for name, entry in self._entries.items() if entry.users == 0), None)
        if victim is not None:
            self._close_in_background(victim)

    def _close_in_background(self, name: str) -> None:
        entry = self._entries.pop(name)
        self._closing += 1
        task = asyncio.get_running_loop().create_task(self._close_entry(entry))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _close_entry(self, entry: _Entry) -> None:
        try:
            await self.run(entry.store.close)
        finally:
            self._closing -= 1
            self._slots.release()

    async def _open(self, name: str) -> None:
        # Concurrent first requests of one user share one open, so the file is created once.
        pending = self._opening.get(name)
        if pending is not None:
            await asyncio.shield(pending)
            return

        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._opening[name] = future
        try:
            store = await self.run(self._open_store, self.users_dir / name / "events.db")
        except asyncio.CancelledError:
            future.cancel()
            raise
        except Exception as exc:
            future.set_exception(exc)
            # Mark the exception as retrieved in case no other request was waiting for it.
            future.exception()
            raise
        finally:
            del self._opening[name]

        self._entries[name] = _Entry(store)
        future.set_result(None)

    def _open_store(self, path: Path) -> EventStore:
        return EventStore.open(
            path,
            synchronous=self._synchronous,
            busy_timeout_ms=self._busy_timeout_ms,
            clock=self._clock,
        )

    async def close(self) -> None:
        """Checkpoint and close every open store, then stop the worker threads."""
        if self._background:
            await asyncio.gather(*self._background, return_exceptions=True)
        entries = list(self._entries.values())
        self._entries.clear()
        for entry in entries:
            if entry.users:
                logger.warning("closing %s while %d requests still use it", entry.store.path, entry.users)
            await self.run(entry.store.close)
        self._executor.shutdown(wait=True)
