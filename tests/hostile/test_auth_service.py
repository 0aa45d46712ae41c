"""Hostile inputs against the auth service running as a real process.

Covers a changed secret on an existing database, very long and non-BMP passwords, concurrent
duplicate sign-ups, email look-alikes and forwarded headers that try to change the issuer.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.hostile.support import (
    assert_json_error,
    bearer,
    cpu_seconds,
    decode_segment,
    launch_without_probe,
    worker_pid,
)
from tests.servers import Service, start_api, start_auth

PASSWORD = "password123"
OTHER_SECRET = "another-secret-9876543210-zyxwvutsrqponml"
# A costlier hash than the default makes the CPU difference between hashing and not hashing plain.
ARGON2_ITERATIONS = "8"


@pytest.fixture(scope="module")
def auth(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    service = start_auth(tmp_path_factory.mktemp("auth"), AIBRAIN_ARGON2_ITERATIONS=ARGON2_ITERATIONS)
    yield service
    service.stop()


def sign_up(auth: Service, email: str, password: str = PASSWORD, **extra: Any) -> httpx.Response:
    body = {"name": "Hostile", "email": email, "password": password, **extra}
    return httpx.post(auth.url + "/api/auth/sign-up/email", json=body, timeout=30.0)


def sign_in(auth: Service, email: str, password: str = PASSWORD) -> httpx.Response:
    return httpx.post(auth.url + "/api/auth/sign-in/email", json={"email": email, "password": password}, timeout=30.0)


def auth_db(auth: Service) -> sqlite3.Connection:
    return sqlite3.connect(Path(auth.env["AIBRAIN_DATA_DIR"]) / "auth.db")


def count_users(auth: Service, email: str) -> int:
    with auth_db(auth) as db:
        return int(db.execute('SELECT count(*) FROM "user" WHERE lower(email) = lower(?)', (email,)).fetchone()[0])


def count_credential_accounts(auth: Service, email: str) -> int:
    query = (
        'SELECT count(*) FROM account JOIN "user" ON account.userId = "user".id '
        "WHERE lower(\"user\".email) = lower(?) AND account.providerId = 'credential'"
    )
    with auth_db(auth) as db:
        return int(db.execute(query, (email,)).fetchone()[0])


def jwt_parts(jwt: str) -> tuple[dict[str, Any], dict[str, Any]]:
    header, payload, _ = jwt.split(".")
    return decode_segment(header), decode_segment(payload)


# A changed secret on an existing database


def test_changed_secret_answers_cleanly(tmp_path: Path) -> None:
    """Sessions signed under the old secret become invalid (null or 401); minting makes a new key."""
    data_dir = tmp_path / "auth"
    first = start_auth(data_dir)
    try:
        signed_up = sign_up(first, "secret-change@example.com")
        old_cookie = {"cookie": f"better-auth.session_token={signed_up.headers['set-auth-token']}"}
        old_kid = jwt_parts(signed_up.json()["jwt"])[0]["kid"]
    finally:
        first.stop()

    second = start_auth(data_dir, port=first.port, BETTER_AUTH_SECRET=OTHER_SECRET)
    api = start_api(tmp_path / "api", second.url)
    try:
        session = httpx.get(second.url + "/api/auth/get-session", headers=old_cookie)
        token = httpx.get(second.url + "/api/auth/token", headers=old_cookie)
        # A raw bearer token carries no signature of the old secret, so the session may still work.
        bearer_token = httpx.get(second.url + "/api/auth/token", headers=bearer(signed_up.json()["token"]))
        jwks = httpx.get(second.url + "/api/auth/jwks")
        signed_in = sign_in(second, "secret-change@example.com")
        new_jwt = signed_in.json()["jwt"]
        me = httpx.get(api.url + "/me", headers=bearer(new_jwt))
        log = second.log_text()
    finally:
        api.stop()
        second.stop()

    assert session.status_code == 200
    assert session.json() is None
    assert_json_error(token, 401, "UNAUTHORIZED")
    assert bearer_token.status_code in (200, 401)
    assert jwks.status_code == 200
    assert old_kid in [key["kid"] for key in jwks.json()["keys"]]
    assert signed_in.status_code == 200, signed_in.text
    assert jwt_parts(new_jwt)[0]["kid"] != old_kid
    assert me.status_code == 200, me.text
    assert "Traceback" not in log
    assert "BETTER_AUTH_SECRET" in log


def test_changed_secret_logged_at_startup(tmp_path: Path) -> None:
    data_dir = tmp_path / "auth"
    first = start_auth(data_dir)
    first.stop()

    second = start_auth(data_dir, port=first.port, BETTER_AUTH_SECRET=OTHER_SECRET)
    try:
        log = second.log_text()
    finally:
        second.stop()

    assert "ERROR" in log
    assert "BETTER_AUTH_SECRET" in log


# Deep JSON


@pytest.fixture(scope="module")
def deep_json_auth(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    """A separate service, so that the errors deep JSON causes stay out of the main service's log."""
    service = start_auth(tmp_path_factory.mktemp("deep-json-auth"))
    yield service
    service.stop()


@pytest.mark.parametrize("path", ["/api/auth/sign-up/email", "/api/auth/sign-in/email"])
@pytest.mark.parametrize("body", [b"[" * 1000 + b"]" * 1000, b"[" * 100_000, b'{"a":' * 5000], ids=["array-1000", "array-100000", "object-5000"])
def test_deep_json_body_rejected(deep_json_auth: Service, path: str, body: bytes) -> None:
    response = httpx.post(deep_json_auth.url + path, content=body, headers={"content-type": "application/json"})

    assert_json_error(response, 400)


# Long and non-BMP passwords


def test_password_of_129_chars_rejected(auth: Service) -> None:
    response = sign_up(auth, "long-password@example.com", "a" * 129)

    assert_json_error(response, 400, "PASSWORD_TOO_LONG")
    assert count_users(auth, "long-password@example.com") == 0


def test_megabyte_passwords_rejected_without_hashing(auth: Service) -> None:
    """Twenty concurrent sign-ins with a 1 MiB password, half for a known email, cost no hash.

    The worker's CPU time for the twenty is compared with that of one real sign-in, which hashes
    once at the module's raised argon2 cost. Hashing each of the twenty would cost twenty times that.
    """
    assert sign_up(auth, "known-long@example.com").status_code == 200
    pid = worker_pid(auth)
    cpu_before = cpu_seconds(pid)
    assert sign_in(auth, "known-long@example.com").status_code == 200
    one_hash = cpu_seconds(pid) - cpu_before

    huge = "p" * (1024 * 1024)
    emails = ["known-long@example.com", "unknown-long@example.com"] * 10
    cpu_before = cpu_seconds(pid)
    with ThreadPoolExecutor(max_workers=20) as pool:
        responses = list(pool.map(lambda email: sign_in(auth, email, huge), emails))
    twenty_rejections = cpu_seconds(pid) - cpu_before

    for response in responses:
        assert_json_error(response, 400, "PASSWORD_TOO_LONG")
    assert twenty_rejections < 5 * one_hash


def test_megabyte_password_sign_up_rejected(auth: Service) -> None:
    response = sign_up(auth, "huge-sign-up@example.com", "p" * (1024 * 1024))

    assert_json_error(response, 400, "PASSWORD_TOO_LONG")


def test_emoji_password_counted_in_utf16_units(auth: Service) -> None:
    """30 four-byte emoji are 60 UTF-16 units, within the 128 limit; 65 are 130 units, beyond it."""
    password = "\U0001f600" * 30

    assert sign_up(auth, "emoji@example.com", password).status_code == 200
    assert sign_in(auth, "emoji@example.com", password).status_code == 200
    assert sign_in(auth, "emoji@example.com", "\U0001f601" * 30).status_code == 401
    assert sign_up(auth, "emoji-64@example.com", "\U0001f600" * 64).status_code == 200
    assert_json_error(sign_up(auth, "emoji-65@example.com", "\U0001f600" * 65), 400, "PASSWORD_TOO_LONG")


@pytest.mark.parametrize(
    "password",
    ["\ud800" * 10, "pass\x00word123", "\u0301" * 20, "\ufeff" * 10],
    ids=["lone-surrogates", "nul-byte", "combining-marks", "byte-order-marks"],
)
def test_odd_password_never_500(auth: Service, password: str) -> None:
    body = '{"name":"Odd","email":"odd-%d@example.com","password":%s}' % (
        abs(hash(password)) % 10**9,
        _json_string(password),
    )
    response = httpx.post(
        auth.url + "/api/auth/sign-up/email", content=body.encode(), headers={"content-type": "application/json"}
    )

    assert response.status_code < 500, response.text


def _json_string(text: str) -> str:
    """Encode text as a JSON string with \\u escapes, so lone surrogates survive the trip."""
    return '"' + "".join(f"\\u{ord(char):04x}" for char in text) + '"'


# Concurrent duplicate sign-ups


def test_concurrent_sign_ups_create_one_user(auth: Service) -> None:
    email = "race@example.com"
    with ThreadPoolExecutor(max_workers=20) as pool:
        responses = list(pool.map(lambda _: sign_up(auth, email), range(20)))

    statuses = sorted(response.status_code for response in responses)
    assert statuses == [200] + [422] * 19
    for response in responses:
        if response.status_code == 422:
            assert_json_error(response, 422, "USER_ALREADY_EXISTS_USE_ANOTHER_EMAIL")
    assert count_users(auth, email) == 1
    assert count_credential_accounts(auth, email) == 1


def test_concurrent_case_variants_create_one_user(auth: Service) -> None:
    base = "casey.race@example.com"
    variants = [
        "".join(char.upper() if (index >> position) & 1 else char for position, char in enumerate(base))
        for index in range(20)
    ]
    with ThreadPoolExecutor(max_workers=20) as pool:
        responses = list(pool.map(lambda email: sign_up(auth, email), variants))

    statuses = sorted(response.status_code for response in responses)
    assert statuses == [200] + [422] * 19
    assert count_users(auth, base) == 1
    assert count_credential_accounts(auth, base) == 1
    with auth_db(auth) as db:
        assert db.execute('SELECT email FROM "user" WHERE lower(email) = ?', (base,)).fetchall() == [(base,)]


def test_user_email_has_unique_index(auth: Service) -> None:
    with auth_db(auth) as db:
        indexes = db.execute("PRAGMA index_list('user')").fetchall()
        unique_columns = [
            [column[2] for column in db.execute(f"PRAGMA index_info('{index[1]}')").fetchall()]
            for index in indexes
            if index[2] == 1
        ]

    assert ["email"] in unique_columns


# Email normalisation and look-alikes


def test_email_case_duplicates_refused(auth: Service) -> None:
    created = sign_up(auth, "Jack@Example.COM")
    assert created.status_code == 200, created.text
    assert created.json()["user"]["email"] == "jack@example.com"

    assert_json_error(sign_up(auth, "jack@example.com"), 422, "USER_ALREADY_EXISTS_USE_ANOTHER_EMAIL")
    signed_in = sign_in(auth, "JACK@example.com")
    assert signed_in.status_code == 200
    assert signed_in.json()["user"]["email"] == "jack@example.com"


@pytest.mark.parametrize(
    "email",
    [
        "jac\u212a@example.com",  # KELVIN SIGN, which lower() turns into k
        " jack@example.com ",
        "jack@ex\u0430mple.com",  # CYRILLIC SMALL LETTER A
        "jack@example.com\u200b",
        "jack@example.com\x00",
        "jack\n@example.com",
        "ｊａｃｋ@example.com",  # fullwidth letters, which NFKC folds to ASCII
        "jack@example.com.",
    ],
    ids=["kelvin-sign", "spaces", "cyrillic-a", "zero-width-space", "nul", "newline", "fullwidth", "trailing-dot"],
)
def test_email_look_alike_rejected(auth: Service, email: str) -> None:
    up = sign_up(auth, email)
    into = sign_in(auth, email)

    assert_json_error(up, 400)
    assert_json_error(into, 400)
    assert "set-cookie" not in up.headers
    assert "set-cookie" not in into.headers
    assert count_users(auth, "jack@example.com") <= 1


def test_look_alikes_left_one_jack(auth: Service) -> None:
    with auth_db(auth) as db:
        emails = [row[0] for row in db.execute('SELECT email FROM "user"').fetchall()]

    assert [email for email in emails if "jack" in email.casefold() or "ack@" in email] == ["jack@example.com"]


# Forwarded headers must not change the issuer


JUNK_HEADERS = {"X-Forwarded-Proto": "some:", "X-Forwarded-Host": "junk", "Forwarded": "host=junk;proto=some"}


def test_forwarded_headers_do_not_change_issuer(tmp_path: Path) -> None:
    """The first request the service ever receives carries junk forwarded headers; the base URL still wins."""
    auth = launch_without_probe("auth", tmp_path / "auth", {})
    try:
        first = httpx.get(auth.url + "/api/auth/ok", headers=JUNK_HEADERS, timeout=30.0)
        signed_up = sign_up(auth, "forwarded@example.com")
        signed_up_junk = httpx.post(
            auth.url + "/api/auth/sign-up/email",
            json={"name": "J", "email": "forwarded-junk@example.com", "password": PASSWORD},
            headers={**JUNK_HEADERS, "Host": "junk"},
        )
        token = httpx.get(
            auth.url + "/api/auth/token", headers={**bearer(signed_up.json()["token"]), **JUNK_HEADERS, "Host": "junk"}
        )
        jwks = httpx.get(auth.url + "/api/auth/jwks", headers=JUNK_HEADERS)
    finally:
        auth.stop()

    assert first.status_code == 200
    assert signed_up.status_code == 200, signed_up.text
    assert signed_up_junk.status_code == 200, signed_up_junk.text
    assert token.status_code == 200
    assert jwks.status_code == 200
    for jwt in (signed_up.json()["jwt"], signed_up_junk.json()["jwt"], token.json()["token"]):
        claims = jwt_parts(jwt)[1]
        assert claims["iss"] == auth.url
        assert claims["aud"] == auth.url
        assert "junk" not in jwt_parts(jwt)[1]["iss"]


def test_auth_log_has_no_traceback(auth: Service) -> None:
    log = auth.log_text()

    assert "Traceback" not in log
    assert " ERROR " not in log
