"""Users, credential accounts and sessions in the auth database (blocking calls; run them in threads).

Rows come back as dicts in Better Auth's JSON key order, ready to send.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Engine, Row, delete, select, update
from sqlalchemy.exc import IntegrityError

from aibrain.auth import db
from aibrain.auth.tokens import new_id

USER_KEYS = ("name", "email", "emailVerified", "image", "createdAt", "updatedAt", "id")
SESSION_KEYS = ("expiresAt", "token", "createdAt", "updatedAt", "ipAddress", "userAgent", "userId", "id")

_user_columns = [db.user.c[name] for name in USER_KEYS]
_session_columns = [db.session.c[name].label(f"s_{name}") for name in SESSION_KEYS]


class DuplicateEmailError(Exception):
    """Raised when a sign-up's email is already taken (the UNIQUE constraint on user.email)."""


def user_json(row: Row[Any] | dict[str, Any]) -> dict[str, Any]:
    mapping = row._mapping if isinstance(row, Row) else row
    user = {name: mapping[name] for name in USER_KEYS}
    user["emailVerified"] = bool(user["emailVerified"])
    return user


def _session_json(mapping: Any) -> dict[str, Any]:
    return {name: mapping[f"s_{name}"] for name in SESSION_KEYS}


def email_taken(engine: Engine, email: str) -> bool:
    with db.read_connection(engine) as connection:
        return connection.execute(select(db.user.c.id).where(db.user.c.email == email)).first() is not None


def find_credentials(engine: Engine, email: str) -> tuple[dict[str, Any], str | None, str | None] | None:
    """Return (user, account id, password hash) for an email; the account parts are None without one."""
    query = (
        select(*_user_columns, db.account.c.id.label("account_id"), db.account.c.password)
        .select_from(db.user)
        .outerjoin(
            db.account,
            (db.account.c.userId == db.user.c.id) & (db.account.c.providerId == "credential"),
        )
        .where(db.user.c.email == email)
    )
    with db.read_connection(engine) as connection:
        row = connection.execute(query).first()
    if row is None:
        return None
    return user_json(row), row.account_id, row.password


def _session_row(user_id: str, now: datetime, expires_in: int, ip: str, user_agent: str) -> dict[str, Any]:
    stamp = db.to_iso(now)
    return {
        "expiresAt": db.iso_after(now, expires_in),
        "token": new_id(),
        "createdAt": stamp,
        "updatedAt": stamp,
        "ipAddress": ip,
        "userAgent": user_agent,
        "userId": user_id,
        "id": new_id(),
    }


def create_user(
    engine: Engine,
    *,
    name: str,
    email: str,
    image: str | None,
    password_hash: str,
    now: datetime,
    session_expires_in: int,
    ip: str,
    user_agent: str,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Insert the user, its credential account and a first session in one transaction."""
    stamp = db.to_iso(now)
    user_id = new_id()
    user = {
        "name": name,
        "email": email,
        "emailVerified": False,
        "image": image,
        "createdAt": stamp,
        "updatedAt": stamp,
        "id": user_id,
    }
    account = {
        "id": new_id(),
        "accountId": user_id,
        "providerId": "credential",
        "userId": user_id,
        "password": password_hash,
        "createdAt": stamp,
        "updatedAt": stamp,
    }
    session = _session_row(user_id, now, session_expires_in, ip, user_agent)
    try:
        with db.write_transaction(engine) as connection:
            connection.execute(db.user.insert().values(**user))
            connection.execute(db.account.insert().values(**account))
            connection.execute(db.session.insert().values(**session))
    except IntegrityError as error:
        raise DuplicateEmailError(email) from error
    return user, session


def create_session(
    engine: Engine, user_id: str, *, now: datetime, expires_in: int, ip: str, user_agent: str
) -> dict[str, Any]:
    session = _session_row(user_id, now, expires_in, ip, user_agent)
    with db.write_transaction(engine) as connection:
        connection.execute(db.session.insert().values(**session))
    return session


def find_session(engine: Engine, token: str) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """Return (session, user) for a raw session token, or None when no such session exists."""
    query = (
        select(*_session_columns, *_user_columns)
        .select_from(db.session.join(db.user, db.user.c.id == db.session.c.userId))
        .where(db.session.c.token == token)
    )
    with db.read_connection(engine) as connection:
        row = connection.execute(query).first()
    if row is None:
        return None
    return _session_json(row._mapping), user_json(row)


def delete_session(engine: Engine, token: str) -> None:
    with db.write_transaction(engine) as connection:
        connection.execute(delete(db.session).where(db.session.c.token == token))


def extend_session(engine: Engine, session_id: str, *, expires_at: str, updated_at: str) -> None:
    with db.write_transaction(engine) as connection:
        connection.execute(
            update(db.session).where(db.session.c.id == session_id).values(expiresAt=expires_at, updatedAt=updated_at)
        )


def replace_password(engine: Engine, account_id: str, password_hash: str, now: datetime) -> None:
    with db.write_transaction(engine) as connection:
        connection.execute(
            update(db.account)
            .where(db.account.c.id == account_id)
            .values(password=password_hash, updatedAt=db.to_iso(now))
        )
