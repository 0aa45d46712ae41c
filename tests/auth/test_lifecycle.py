"""Start-up, restart and secret handling of the auth service as a real process."""

import json
import signal
import subprocess
import sys

import httpx

from tests.servers import TEST_SECRET, start_auth

PASSWORD = "password123"


def sign_up(url: str, email: str) -> httpx.Response:
    return httpx.post(url + "/api/auth/sign-up/email", json={"name": "R", "email": email, "password": PASSWORD})


def test_restart_keeps_users_and_signing_key(tmp_path):
    first = start_auth(tmp_path)
    sign_up(first.url, "keep@example.com")
    kid = httpx.get(first.url + "/api/auth/jwks").json()["keys"][0]["kid"]
    first.stop()

    second = start_auth(tmp_path, port=first.port)
    try:
        signed_in = httpx.post(
            second.url + "/api/auth/sign-in/email", json={"email": "keep@example.com", "password": PASSWORD}
        )
        assert signed_in.status_code == 200
        assert httpx.get(second.url + "/api/auth/jwks").json()["keys"][0]["kid"] == kid
    finally:
        second.stop()


def test_sigterm_stops_with_exit_code_zero(tmp_path):
    service = start_auth(tmp_path)
    assert service.stop(signal.SIGTERM) == 0


def test_sigint_stops_with_exit_code_zero(tmp_path):
    service = start_auth(tmp_path)
    assert service.stop(signal.SIGINT) == 0


def test_changed_secret_invalidates_sessions_but_serves(tmp_path):
    first = start_auth(tmp_path)
    # The signed form carries the old secret's HMAC; a raw token would be signed afresh by the server.
    signed = sign_up(first.url, "secret@example.com").headers["set-auth-token"]
    old_kid = httpx.get(first.url + "/api/auth/jwks").json()["keys"][0]["kid"]
    first.stop()

    second = start_auth(tmp_path, BETTER_AUTH_SECRET=TEST_SECRET + "-rotated")
    try:
        session = httpx.get(second.url + "/api/auth/get-session", headers={"authorization": f"Bearer {signed}"})
        assert session.status_code == 200
        assert session.json() is None
        signed_in = httpx.post(
            second.url + "/api/auth/sign-in/email", json={"email": "secret@example.com", "password": PASSWORD}
        )
        assert signed_in.status_code == 200
        kids = {key["kid"] for key in httpx.get(second.url + "/api/auth/jwks").json()["keys"]}
        assert old_kid in kids
        assert len(kids) == 2
        assert "cannot be decrypted" in second.log_text()
    finally:
        second.stop()


def run_cli(tmp_path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {"PATH": "/usr/bin:/bin", "AIBRAIN_DATA_DIR": str(tmp_path), **env}
    return subprocess.run(
        [sys.executable, "-m", "aibrain", *args], env=environment, capture_output=True, text=True, timeout=60
    )


def test_production_without_secret_refuses_to_start(tmp_path):
    result = run_cli(tmp_path, "auth", "--port", "1", AIBRAIN_ENV="production")
    assert result.returncode == 1
    assert "BETTER_AUTH_SECRET is not set" in result.stderr


def test_production_short_secret_refuses_to_start(tmp_path):
    result = run_cli(tmp_path, "auth", "--port", "1", AIBRAIN_ENV="production", BETTER_AUTH_SECRET="short")
    assert result.returncode == 1
    assert "at least 32" in result.stderr


def test_development_generates_secret_once(tmp_path):
    run_cli(tmp_path, "migrate")
    run_cli(tmp_path, "keys", "list")
    first = (tmp_path / "secret").read_text()
    run_cli(tmp_path, "keys", "list")
    assert (tmp_path / "secret").read_text() == first


def test_keys_rotate_adds_key_and_keeps_old_published(tmp_path):
    run_cli(tmp_path, "migrate")
    run_cli(tmp_path, "keys", "rotate", BETTER_AUTH_SECRET=TEST_SECRET)
    run_cli(tmp_path, "keys", "rotate", BETTER_AUTH_SECRET=TEST_SECRET)
    listing = run_cli(tmp_path, "keys", "list", "--json", BETTER_AUTH_SECRET=TEST_SECRET)
    assert [key["published"] for key in json.loads(listing.stdout)["keys"]] == [True, True]


def test_keys_list_without_database_fails_with_hint(tmp_path):
    result = run_cli(tmp_path, "keys", "list", "--data-dir", str(tmp_path / "elsewhere"))
    assert result.returncode == 1
    assert "no auth database" in result.stderr
    assert not (tmp_path / "elsewhere").exists()


def test_migrate_reports_applied_steps(tmp_path):
    assert "0001_better_auth_tables" in run_cli(tmp_path, "migrate").stdout


def test_help_lists_every_setting(tmp_path):
    text = run_cli(tmp_path, "serve", "--help").stdout
    for name in ("BETTER_AUTH_SECRET", "BETTER_AUTH_URL", "AUTH_SERVER_URL", "AIBRAIN_DATA_DIR", "AIBRAIN_MAX_BODY_BYTES"):
        assert name in text, name
