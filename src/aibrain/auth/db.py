"""Better Auth's tables through SQLAlchemy Core, and the engine that reaches them.

Names, columns and value formats are Better Auth 1.7's own: camelCase quoted column names, dates as
ISO-8601 UTC text with milliseconds and `Z`, booleans as 0/1 on SQLite. That way a Better Auth
server can open a database aibrain wrote, and the other way round.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import (
    Boolean,
    Column,
    Connection,
    Engine,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    create_engine,
    event,
)
from sqlalchemy.engine import make_url

log = logging.getLogger(__name__)

metadata = MetaData()

# Better Auth declares dates as `date` on SQLite and stores ISO text in them. String keeps that text
# as it is.
# NOTE: on PostgreSQL Better Auth uses timestamptz. A database shared with a TypeScript server there
# needs a type that converts, while aibrain alone works on either.
Date = String

user = Table(
    "user",
    metadata,
    Column("id", String, primary_key=True),
    Column("name", String, nullable=False),
    Column("email", String, nullable=False, unique=True),
    Column("emailVerified", Boolean, nullable=False),
    Column("image", String),
    Column("createdAt", Date, nullable=False),
    Column("updatedAt", Date, nullable=False),
)

session = Table(
    "session",
    metadata,
    Column("id", String, primary_key=True),
    Column("expiresAt", Date, nullable=False),
    Column("token", String, nullable=False, unique=True),
    Column("createdAt", Date, nullable=False),
    Column("updatedAt", Date, nullable=False),
    Column("ipAddress", String),
    Column("userAgent", String),
    Column("userId", String, ForeignKey("user.id", ondelete="CASCADE"), nullable=False),
    Index("session_userId_idx", "userId"),
)

account = Table(
    "account",
    metadata,
    Column("id", String, primary_key=True),
    Column("accountId", String, nullable=False),
    Column("providerId", String, nullable=False),
    Column("userId", String, ForeignKey("user.id", ondelete="CASCADE"), nullable=False),
    Column("accessToken", String),
    Column("refreshToken", String),
    Column("idToken", String),
    Column("accessTokenExpiresAt", Date),
    Column("refreshTokenExpiresAt", Date),
    Column("scope", String),
    Column("password", String),
    Column("createdAt", Date, nullable=False),
    Column("updatedAt", Date, nullable=False),
    Index("account_userId_idx", "userId"),
)

verification = Table(
    "verification",
    metadata,
    Column("id", String, primary_key=True),
    Column("identifier", String, nullable=False),
    Column("value", String, nullable=False),
    Column("expiresAt", Date, nullable=False),
    Column("createdAt", Date, nullable=False),
    Column("updatedAt", Date, nullable=False),
    Index("verification_identifier_idx", "identifier"),
)

jwks = Table(
    "jwks",
    metadata,
    Column("id", String, primary_key=True),
    Column("publicKey", String, nullable=False),
    Column("privateKey", String, nullable=False),
    Column("createdAt", Date, nullable=False),
    Column("expiresAt", Date),
    Column("alg", String),
    Column("crv", String),
)

migrations = Table(
    "aibrain_migrations",
    metadata,
    Column("name", String, primary_key=True),
    Column("appliedAt", Date, nullable=False),
)


def to_iso(moment: datetime) -> str:
    """Format a UTC datetime the way Better Auth stores and sends it: `2026-12-04T19:09:50.811Z`."""
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def from_iso(text: str) -> datetime:
    """Parse a Better Auth timestamp (ISO-8601, `Z` or an offset) into an aware UTC datetime."""
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def utc_now() -> datetime:
    return datetime.now(UTC)


def iso_after(moment: datetime, seconds: float) -> str:
    return to_iso(moment + timedelta(seconds=seconds))


def create_database_engine(url: str) -> Engine:
    """Create the engine; on SQLite turn on WAL, foreign keys and a busy timeout for every connection."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return create_engine(url, pool_pre_ping=True)

    if parsed.database and parsed.database != ":memory:":
        path = Path(parsed.database)
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        # Create the file private to its owner, since it contains password hashes. SQLite gives its
        # -wal and -shm files the same mode.
        os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
    engine = create_engine(url, pool_size=8, max_overflow=8)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Hand transaction control to SQLAlchemy's "begin" event below: the sqlite3 module's own
        # implicit BEGIN cannot be made IMMEDIATE for just the transactions that need it.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=5000")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        # A write that first reads (check-then-insert) must take the write lock at BEGIN, or two
        # connections can both read "absent" and one of them later fails with SQLITE_BUSY.
        mode = connection.get_execution_options().get("sqlite_begin", "DEFERRED")
        if mode is not None:
            connection.exec_driver_sql(f"BEGIN {mode}")

    return engine


@contextmanager
def read_connection(engine: Engine) -> Iterator[Connection]:
    """Open a connection for one read statement, which SQLite runs in its own implicit transaction.

    Skipping the explicit BEGIN saves a round trip into SQLite on every session lookup, a tenth of
    the CPU time of get-session when profiled.
    """
    with engine.connect() as connection:
        yield connection.execution_options(sqlite_begin=None)


@contextmanager
def write_transaction(engine: Engine) -> Iterator[Connection]:
    """Open a transaction that holds the write lock from its start (BEGIN IMMEDIATE on SQLite)."""
    with engine.connect() as connection:
        connection = connection.execution_options(sqlite_begin="IMMEDIATE")
        with connection.begin():
            yield connection
