"""One auth database, either server: Better Auth opens aibrain's database and aibrain opens Better Auth's.

Both servers use the same BETTER_AUTH_SECRET, because it signs the session tokens and encrypts the
JWKS private keys (XChaCha20-Poly1305 under SHA-256 of the secret) in both implementations.
Databases are copied with SQLite's backup API after the first server has stopped.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.servers import Service

from .better_auth_process import BetterAuthServer
from .auth_requests import PASSWORD, bearer, jose_header

pytestmark = pytest.mark.interop

ISO_MILLIS_UTC = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")
SCRYPT_HASH = re.compile(r"^[0-9a-f]{32}:[0-9a-f]{128}$")
DATE_COLUMNS = {
    "user": ["createdAt", "updatedAt"],
    "session": ["expiresAt", "createdAt", "updatedAt"],
    "account": ["createdAt", "updatedAt"],
    "jwks": ["createdAt"],
}


def copy_database(source: Path, target: Path) -> Path:
    """Copy a SQLite database with the backup API, so that WAL content is included."""
    target.parent.mkdir(parents=True, exist_ok=True)
    source_connection = sqlite3.connect(source)
    target_connection = sqlite3.connect(target)
    try:
        source_connection.backup(target_connection)
    finally:
        target_connection.close()
        source_connection.close()
    return target


def query(db_path: Path, sql: str, *parameters: object) -> list[sqlite3.Row]:
    connection = sqlite3.connect(db_path)
    try:
        connection.row_factory = sqlite3.Row
        return connection.execute(sql, parameters).fetchall()
    finally:
        connection.close()


def post_json(origin: str, path: str, body: dict[str, Any]) -> httpx.Response:
    return httpx.post(f"{origin}/api/auth{path}", json=body, headers={"origin": origin})


@dataclass
class Handover:
    """What the first server issued and what the second server returned for it."""

    first_sign_up: dict[str, Any]
    first_session_token: str
    first_session: dict[str, Any]
    first_kid: str
    second_sign_in: httpx.Response
    second_session: httpx.Response
    second_token: httpx.Response
    second_db: Path
    # Tables and columns Better Auth's getMigrations() had to add, when Better Auth is the second server.
    second_migrations: dict[str, Any] | None = None


# aibrain (scrypt mode) first, then Better Auth on a copy of its database


@pytest.fixture(scope="module")
def aibrain_to_better_auth(
    start_aibrain: Callable[..., Service], start_reference: Callable[..., BetterAuthServer], tmp_path_factory
) -> Handover:
    data_dir = tmp_path_factory.mktemp("aibrain-first")
    ours = start_aibrain("auth", data_dir=data_dir, AIBRAIN_PASSWORD_HASHER="scrypt", AIBRAIN_JWT_ALGORITHM="RS256")
    signed_up = post_json(ours.url, "/sign-up/email", {"name": "Ada", "email": "ada@example.com", "password": PASSWORD})
    assert signed_up.status_code == 200, signed_up.text
    session_token = signed_up.headers["set-auth-token"]
    kid = jose_header(signed_up.json()["jwt"])["kid"]
    ours.stop()

    copy = copy_database(data_dir / "auth.db", tmp_path_factory.mktemp("better-auth-second") / "auth.db")
    reference = start_reference(db_path=copy, alg="RS256")
    return Handover(
        first_sign_up=signed_up.json(),
        first_session_token=session_token,
        first_session=signed_up.json()["session"],
        first_kid=kid,
        second_session=httpx.get(f"{reference.auth_url}/get-session", headers=bearer(session_token)),
        second_token=httpx.get(f"{reference.auth_url}/token", headers=bearer(session_token)),
        second_sign_in=post_json(reference.url, "/sign-in/email", {"email": "ada@example.com", "password": PASSWORD}),
        second_db=copy,
        second_migrations=reference.migrations,
    )


def test_better_auth_needs_no_migration_of_aibrain_db(aibrain_to_better_auth: Handover) -> None:
    assert aibrain_to_better_auth.second_migrations == {"createdTables": [], "addedColumns": {}}


def test_better_auth_signs_in_aibrain_scrypt_user(aibrain_to_better_auth: Handover) -> None:
    handover = aibrain_to_better_auth
    assert handover.second_sign_in.status_code == 200, handover.second_sign_in.text
    assert handover.second_sign_in.json()["user"]["id"] == handover.first_sign_up["user"]["id"]


def test_better_auth_accepts_aibrain_session(aibrain_to_better_auth: Handover) -> None:
    handover = aibrain_to_better_auth
    assert handover.second_session.status_code == 200
    body = handover.second_session.json()
    assert body is not None
    assert body["session"]["id"] == handover.first_session["id"]
    assert body["user"]["id"] == handover.first_sign_up["user"]["id"]


def test_better_auth_reads_aibrain_timestamps(aibrain_to_better_auth: Handover) -> None:
    handover = aibrain_to_better_auth
    body = handover.second_session.json()
    for key in ("createdAt", "updatedAt", "expiresAt"):
        assert body["session"][key] == handover.first_session[key], key
    for key in ("createdAt", "updatedAt"):
        assert body["user"][key] == handover.first_sign_up["user"][key], key


def test_better_auth_signs_with_aibrain_key(aibrain_to_better_auth: Handover) -> None:
    handover = aibrain_to_better_auth
    assert handover.second_token.status_code == 200, handover.second_token.text
    assert jose_header(handover.second_token.json()["token"])["kid"] == handover.first_kid


# Better Auth first, then aibrain on a copy of its database


@pytest.fixture(scope="module")
def better_auth_db(start_reference: Callable[..., BetterAuthServer], tmp_path_factory) -> dict[str, Any]:
    """A Better Auth database with one user, one session and one RS256 key; the server has stopped."""
    reference = start_reference(alg="RS256")
    signed_up = post_json(reference.url, "/sign-up/email", {"name": "Bo", "email": "bo@example.com", "password": PASSWORD})
    assert signed_up.status_code == 200, signed_up.text
    session_token = signed_up.headers["set-auth-token"]
    session = httpx.get(f"{reference.auth_url}/get-session", headers=bearer(session_token))
    token = httpx.get(f"{reference.auth_url}/token", headers=bearer(session_token))
    reference.stop()
    return {
        "db_path": reference.db_path,
        "sign_up": signed_up.json(),
        "session_token": session_token,
        "session": session.json()["session"],
        "kid": jose_header(token.json()["token"])["kid"],
    }


def aibrain_on_copy(
    better_auth_db: dict[str, Any], start_aibrain: Callable[..., Service], tmp_path_factory, **env: str
) -> Handover:
    data_dir = tmp_path_factory.mktemp("aibrain-second")
    copy = copy_database(better_auth_db["db_path"], data_dir / "auth.db")
    ours = start_aibrain("auth", data_dir=data_dir, AIBRAIN_JWT_ALGORITHM="RS256", **env)
    session_token = better_auth_db["session_token"]
    return Handover(
        first_sign_up=better_auth_db["sign_up"],
        first_session_token=session_token,
        first_session=better_auth_db["session"],
        first_kid=better_auth_db["kid"],
        second_session=httpx.get(f"{ours.url}/api/auth/get-session", headers=bearer(session_token)),
        second_token=httpx.get(f"{ours.url}/api/auth/token", headers=bearer(session_token)),
        second_sign_in=post_json(ours.url, "/sign-in/email", {"email": "bo@example.com", "password": PASSWORD}),
        second_db=copy,
    )


@pytest.fixture(scope="module")
def better_auth_to_aibrain(better_auth_db, start_aibrain, tmp_path_factory) -> Handover:
    return aibrain_on_copy(better_auth_db, start_aibrain, tmp_path_factory)


@pytest.fixture(scope="module")
def better_auth_to_aibrain_scrypt(better_auth_db, start_aibrain, tmp_path_factory) -> Handover:
    return aibrain_on_copy(better_auth_db, start_aibrain, tmp_path_factory, AIBRAIN_PASSWORD_HASHER="scrypt")


def stored_password(db_path: Path, email: str) -> str:
    rows = query(
        db_path,
        'SELECT account.password FROM account JOIN "user" ON account.userId = "user".id '
        "WHERE \"user\".email = ? AND account.providerId = 'credential'",
        email,
    )
    return rows[0]["password"]


def test_aibrain_signs_in_better_auth_user(better_auth_to_aibrain: Handover) -> None:
    handover = better_auth_to_aibrain
    assert handover.second_sign_in.status_code == 200, handover.second_sign_in.text
    assert handover.second_sign_in.json()["user"]["id"] == handover.first_sign_up["user"]["id"]


def test_aibrain_upgrades_better_auth_hash_to_argon2id(better_auth_to_aibrain: Handover) -> None:
    assert stored_password(better_auth_to_aibrain.second_db, "bo@example.com").startswith("$argon2id$")


def test_aibrain_scrypt_mode_keeps_better_auth_hash(better_auth_to_aibrain_scrypt: Handover) -> None:
    handover = better_auth_to_aibrain_scrypt
    assert handover.second_sign_in.status_code == 200, handover.second_sign_in.text
    assert SCRYPT_HASH.match(stored_password(handover.second_db, "bo@example.com"))


def test_aibrain_accepts_better_auth_session(better_auth_to_aibrain: Handover) -> None:
    handover = better_auth_to_aibrain
    assert handover.second_session.status_code == 200
    body = handover.second_session.json()
    assert body is not None
    assert body["session"]["id"] == handover.first_session["id"]
    assert body["user"]["id"] == handover.first_sign_up["user"]["id"]


def test_aibrain_reads_better_auth_timestamps(better_auth_to_aibrain: Handover) -> None:
    handover = better_auth_to_aibrain
    body = handover.second_session.json()
    for key in ("createdAt", "updatedAt", "expiresAt"):
        assert body["session"][key] == handover.first_session[key], key
    for key in ("createdAt", "updatedAt"):
        assert body["user"][key] == handover.first_sign_up["user"][key], key


def test_aibrain_signs_with_better_auth_key(better_auth_to_aibrain: Handover) -> None:
    handover = better_auth_to_aibrain
    assert handover.second_token.status_code == 200, handover.second_token.text
    assert jose_header(handover.second_token.json()["token"])["kid"] == handover.first_kid


@pytest.mark.parametrize("direction", ["aibrain_to_better_auth", "better_auth_to_aibrain"])
def test_shared_db_timestamps_are_iso_millis_utc(direction: str, request: pytest.FixtureRequest) -> None:
    handover = request.getfixturevalue(direction)
    for table, columns in DATE_COLUMNS.items():
        for row in query(handover.second_db, f'SELECT {", ".join(columns)} FROM "{table}"'):
            for column in columns:
                assert ISO_MILLIS_UTC.match(row[column]), f"{table}.{column} = {row[column]!r}"
