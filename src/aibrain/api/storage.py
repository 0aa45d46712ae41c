"""One user's event store: a SQLite file in WAL mode with a versioned schema.

Each store owns one connection opened with `check_same_thread=False`; a lock serialises its use,
so that the pool may run its calls on any worker thread.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Final
from urllib.parse import quote

logger = logging.getLogger(__name__)

_PLAIN_SUB = re.compile(r"[A-Za-z0-9_-]{1,64}")

# Each step runs once, in order, inside one write transaction; PRAGMA user_version stores how many ran.
MIGRATIONS: Final[tuple[tuple[str, str], ...]] = (
    (
        "create events table",
        """
        CREATE TABLE events (
            id INTEGER PRIMARY KEY,
            type TEXT NOT NULL,
            data TEXT NOT NULL,
            created_at TEXT NOT NULL
        );
        CREATE INDEX events_type_created_at ON events (type, created_at);
        CREATE INDEX events_created_at ON events (created_at);
        """,
    ),
)

# Both orderings use the indexes above: SQLite appends the rowid (id) to every index entry, so
# (type, created_at) is really (type, created_at, id) and serves the keyset cursor directly.
_PAGE_ALL = "SELECT id, type, data, created_at FROM events {where} ORDER BY created_at DESC, id DESC LIMIT ?"


def user_dir_name(sub: str) -> str:
    """Return the directory name of a user: the sub itself when it is safe, else a hash of it.

    A plain name is 1 to 64 characters of `[A-Za-z0-9_-]`, so it cannot contain a path separator
    or a dot. Any other sub becomes `h-` plus 64 hex digits (66 characters), which is too long to
    be a plain name, so the two forms never collide.
    """
    # NOTE: plain names keep their letter case, so on a case-insensitive file system (macOS, Windows)
    # subs that differ only in case would share a folder. Better Auth's random 32-character ids make
    # that unlikely; run the API on a case-sensitive file system to rule it out.
    if _PLAIN_SUB.fullmatch(sub):
        return sub
    return "h-" + hashlib.sha256(sub.encode("utf-8", "surrogatepass")).hexdigest()


def format_timestamp(seconds: float) -> str:
    """Format seconds since the epoch as RFC 3339 UTC with milliseconds, e.g. 2026-01-02T03:04:05.678Z."""
    millis = int(seconds * 1000)
    whole, fraction = divmod(millis, 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole)) + f".{fraction:03d}Z"


@dataclass(frozen=True, slots=True)
class EventRow:
    id: int
    type: str
    data: str
    created_at: str


class StorageError(Exception):
    """Raised when a store cannot read or write its file.

    `full` is True for a full disk (SQLITE_FULL, ENOSPC), `read_only` for a file or folder that
    cannot be written (SQLITE_READONLY, EROFS, EACCES), and `no_descriptors` when the process ran
    out of file descriptors (EMFILE).
    """

    def __init__(
        self, path: Path, message: str, *, full: bool, read_only: bool = False, no_descriptors: bool = False
    ) -> None:
        super().__init__(message)
        self.path = path
        self.message = message
        self.full = full
        self.read_only = read_only
        self.no_descriptors = no_descriptors


def _storage_error(path: Path, exc: Exception) -> StorageError:
    name = getattr(exc, "sqlite_errorname", "")
    errno = exc.errno if isinstance(exc, OSError) else None
    full = name == "SQLITE_FULL" or errno == 28  # ENOSPC
    read_only = name.startswith("SQLITE_READONLY") or errno in (13, 30)  # EACCES, EROFS
    no_descriptors = errno == 24  # EMFILE
    return StorageError(
        path, f"{type(exc).__name__}: {exc}", full=full, read_only=read_only, no_descriptors=no_descriptors
    )


class EventStore:
    """The events of one user in `<users dir>/<user dir>/events.db`."""

    def __init__(self, path: Path, connection: sqlite3.Connection, clock: Callable[[], float]) -> None:
        self.path = path
        self._connection = connection
        self._clock = clock
        self._lock = threading.Lock()
        self.closed = False
        # True when the file could only be opened as an immutable snapshot (a read-only folder).
        self.read_only = False

    @classmethod
    def open(
        cls,
        path: Path,
        *,
        synchronous: str,
        busy_timeout_ms: int,
        clock: Callable[[], float],
    ) -> EventStore:
        """Create the directory and file if needed, set the pragmas and run pending migrations."""
        try:
            os.makedirs(path.parent, mode=0o700, exist_ok=True)
            connection = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        except (OSError, sqlite3.Error) as exc:
            raise _storage_error(path, exc) from exc

        try:
            connection.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
            connection.execute("PRAGMA journal_mode = WAL")
            # NORMAL in WAL mode skips the fsync per commit; a killed process loses nothing, a power cut may.
            connection.execute(f"PRAGMA synchronous = {synchronous}")
            _migrate(connection, path)
        except sqlite3.Error as exc:
            connection.close()
            fallback = cls._open_snapshot(path, clock)
            if fallback is None:
                raise _storage_error(path, exc) from exc
            logger.warning("event store %s is not writable (%s); serving reads from a read-only snapshot", path, exc)
            return fallback
        return cls(path, connection, clock)

    @classmethod
    def _open_snapshot(cls, path: Path, clock: Callable[[], float]) -> EventStore | None:
        """Open an existing file read-only and immutable, for a folder where SQLite cannot write.

        A WAL database needs its -shm file to be writable, so a read-only folder cannot be opened
        normally. `immutable=1` reads the main file without it. That is safe only because no
        process can write to that folder either, and the pool reopens the store on every use.
        """
        if not path.is_file():
            return None
        try:
            connection = sqlite3.connect(
                f"file:{quote(str(path))}?mode=ro&immutable=1", uri=True, isolation_level=None, check_same_thread=False
            )
            version = connection.execute("PRAGMA user_version").fetchone()[0]
        except sqlite3.Error:
            return None
        if version != len(MIGRATIONS):
            connection.close()
            return None
        store = cls(path, connection, clock)
        store.read_only = True
        return store

    def append(self, event_type: str, data: str) -> EventRow:
        """Insert one event and return it with its id and created_at."""
        if self.read_only:
            raise StorageError(self.path, "the store was opened read-only", full=False, read_only=True)
        created_at = format_timestamp(self._clock())
        with self._lock:
            try:
                cursor = self._connection.execute(
                    "INSERT INTO events (type, data, created_at) VALUES (?, ?, ?)",
                    (event_type, data, created_at),
                )
            except sqlite3.Error as exc:
                raise _storage_error(self.path, exc) from exc
        return EventRow(id=cursor.lastrowid or 0, type=event_type, data=data, created_at=created_at)

    def page(
        self, event_type: str | None, limit: int, after: tuple[str, int] | None, *, blocking: bool = True
    ) -> list[EventRow] | None:
        """Return up to `limit` events, newest first, older than the `(created_at, id)` position `after`.

        With `blocking=False` it returns None at once when another thread is using the connection.
        """
        conditions: list[str] = []
        params: list[object] = []
        if event_type is not None:
            conditions.append("type = ?")
            params.append(event_type)
        if after is not None:
            conditions.append("(created_at, id) < (?, ?)")
            params.extend(after)
        where = "WHERE " + " AND ".join(conditions) if conditions else ""
        params.append(limit)

        if not self._lock.acquire(blocking=blocking):
            return None
        try:
            rows = self._connection.execute(_PAGE_ALL.format(where=where), params).fetchall()
        except sqlite3.Error as exc:
            raise _storage_error(self.path, exc) from exc
        finally:
            self._lock.release()
        return [EventRow(*row) for row in rows]

    def close(self) -> None:
        """Checkpoint the WAL into the main file, truncate it, and close the connection."""
        with self._lock:
            if self.closed:
                return
            self.closed = True
            if self.read_only:
                self._connection.close()
                return
            try:
                self._connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            except sqlite3.Error as exc:
                logger.warning("checkpoint of %s failed on close: %s", self.path, exc)
            finally:
                self._connection.close()

    def execute_for_tests(self, sql: str) -> list[tuple[object, ...]]:
        """Run one statement on the store's connection (tests use it to simulate a full or read-only disk)."""
        with self._lock:
            return self._connection.execute(sql).fetchall()


def _migrate(connection: sqlite3.Connection, path: Path) -> None:
    version = connection.execute("PRAGMA user_version").fetchone()[0]
    if version >= len(MIGRATIONS):
        return

    # BEGIN IMMEDIATE takes the write lock first, so two processes opening a new file cannot both migrate.
    connection.execute("BEGIN IMMEDIATE")
    try:
        version = connection.execute("PRAGMA user_version").fetchone()[0]
        for number, (name, sql) in enumerate(MIGRATIONS[version:], start=version + 1):
            for statement in sql.split(";"):
                if statement.strip():
                    connection.execute(statement)
            connection.execute(f"PRAGMA user_version = {number}")
            logger.info("migrated %s to schema version %d (%s)", path, number, name)
        connection.execute("COMMIT")
    except BaseException:
        connection.execute("ROLLBACK")
        raise
