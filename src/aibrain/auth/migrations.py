"""Versioned migrations of the auth database, recorded by name in `aibrain_migrations`.

Each step is a named function that runs once in its own transaction. The first step creates Better
Auth's tables only where they are missing, so aibrain can adopt a database a Better Auth server made.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from sqlalchemy import Connection, Engine, select

from aibrain.auth import db

log = logging.getLogger(__name__)


def _create_better_auth_tables(connection: Connection) -> None:
    tables = [db.user, db.session, db.account, db.verification, db.jwks]
    db.metadata.create_all(connection, tables=tables, checkfirst=True)


MIGRATIONS: list[tuple[str, Callable[[Connection], None]]] = [
    ("0001_better_auth_tables", _create_better_auth_tables),
]


def migrate(engine: Engine) -> list[str]:
    """Apply every migration not yet recorded; return the names applied by this call."""
    with db.write_transaction(engine) as connection:
        db.migrations.create(connection, checkfirst=True)

    applied: list[str] = []
    for name, step in MIGRATIONS:
        with db.write_transaction(engine) as connection:
            done = connection.execute(select(db.migrations.c.name).where(db.migrations.c.name == name)).first()
            if done is not None:
                continue
            step(connection)
            connection.execute(db.migrations.insert().values(name=name, appliedAt=db.to_iso(db.utc_now())))
        log.info("applied migration %s", name)
        applied.append(name)
    return applied
