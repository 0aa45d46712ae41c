"""Both services as real processes: the README's walk-through, isolation, restarts and rotation."""

import os
import signal
import sqlite3
import subprocess
import sys
import time

import httpx
import pytest

from tests.servers import TEST_SECRET, free_port, start_api, start_auth

PASSWORD = "password123"


@pytest.fixture
def services(tmp_path):
    auth = start_auth(tmp_path)
    api = start_api(tmp_path, auth.url)
    yield auth, api
    api.stop()
    auth.stop()


def sign_up(auth_url: str, email: str) -> dict:
    response = httpx.post(
        auth_url + "/api/auth/sign-up/email", json={"name": email.split("@")[0], "email": email, "password": PASSWORD}
    )
    assert response.status_code == 200, response.text
    return response.json()


def bearer(jwt: str) -> dict[str, str]:
    return {"authorization": f"Bearer {jwt}"}


def test_flow_me_returns_the_signed_up_user(services):
    auth, api = services
    body = sign_up(auth.url, "alice@example.com")
    me = httpx.get(api.url + "/me", headers=bearer(body["jwt"])).json()
    assert me == {"id": body["user"]["id"], "email": "alice@example.com", "name": "alice", "email_verified": False, "image": None}


def test_flow_event_round_trip(services):
    auth, api = services
    jwt = sign_up(auth.url, "bob@example.com")["jwt"]
    created = httpx.post(api.url + "/events", headers=bearer(jwt), json={"type": "note", "data": {"text": "hi"}})
    assert created.status_code == 201
    listed = httpx.get(api.url + "/events", params={"type": "note"}, headers=bearer(jwt)).json()
    assert listed["events"] == [created.json()]


def test_flow_event_lives_in_the_users_own_file(services, tmp_path):
    auth, api = services
    body = sign_up(auth.url, "carol@example.com")
    httpx.post(api.url + "/events", headers=bearer(body["jwt"]), json={"type": "note", "data": 1})
    with sqlite3.connect(tmp_path / "users" / body["user"]["id"] / "events.db") as db:
        assert db.execute("SELECT type, data FROM events").fetchall() == [("note", "1")]


def test_flow_token_from_token_endpoint_works(services):
    auth, api = services
    token = sign_up(auth.url, "dave@example.com")["token"]
    jwt = httpx.get(auth.url + "/api/auth/token", headers=bearer(token)).json()["token"]
    assert httpx.get(api.url + "/me", headers=bearer(jwt)).status_code == 200


def test_flow_users_are_isolated(services):
    auth, api = services
    first = sign_up(auth.url, "erin@example.com")["jwt"]
    second = sign_up(auth.url, "frank@example.com")["jwt"]
    httpx.post(api.url + "/events", headers=bearer(first), json={"type": "secret", "data": "erin's"})
    listed = httpx.get(api.url + "/events", params={"type": "secret"}, headers=bearer(second)).json()
    assert listed["events"] == []


def test_flow_without_token_is_401(services):
    _auth, api = services
    response = httpx.get(api.url + "/me")
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")


def test_restart_keeps_users_keys_and_events(tmp_path):
    auth = start_auth(tmp_path)
    api = start_api(tmp_path, auth.url)
    jwt = sign_up(auth.url, "gina@example.com")["jwt"]
    event = httpx.post(api.url + "/events", headers=bearer(jwt), json={"type": "note", "data": [1, 2]}).json()
    api.stop()
    auth.stop()

    auth = start_auth(tmp_path, port=auth.port)
    api = start_api(tmp_path, auth.url, port=api.port)
    try:
        listed = httpx.get(api.url + "/events", headers=bearer(jwt)).json()["events"]
        assert listed == [event]
        signed_in = httpx.post(
            auth.url + "/api/auth/sign-in/email", json={"email": "gina@example.com", "password": PASSWORD}
        )
        assert httpx.get(api.url + "/me", headers=bearer(signed_in.json()["jwt"])).status_code == 200
    finally:
        api.stop()
        auth.stop()


def test_key_rotation_seen_by_running_api(tmp_path):
    auth = start_auth(tmp_path)
    api = start_api(tmp_path, auth.url)
    try:
        old_jwt = sign_up(auth.url, "hank@example.com")["jwt"]
        assert httpx.get(api.url + "/me", headers=bearer(old_jwt)).status_code == 200

        rotated = subprocess.run(
            [sys.executable, "-m", "aibrain", "keys", "rotate"], env=auth.env, capture_output=True, text=True, timeout=60
        )
        assert rotated.returncode == 0, rotated.stderr
        # The running auth service rereads its keys every 10 s; a restart makes it immediate.
        auth.stop()
        auth = start_auth(tmp_path, port=auth.port)

        new_jwt = httpx.post(
            auth.url + "/api/auth/sign-in/email", json={"email": "hank@example.com", "password": PASSWORD}
        ).json()["jwt"]
        assert httpx.get(api.url + "/me", headers=bearer(new_jwt)).status_code == 200
        assert httpx.get(api.url + "/me", headers=bearer(old_jwt)).status_code == 200
    finally:
        api.stop()
        auth.stop()


def test_serve_runs_both_and_stops_cleanly_on_sigint(tmp_path):
    auth_port, api_port = free_port(), free_port()
    env = {key: value for key, value in os.environ.items() if not key.startswith(("AIBRAIN_", "BETTER_AUTH_"))}
    env.update(
        AIBRAIN_DATA_DIR=str(tmp_path),
        AIBRAIN_AUTH_PORT=str(auth_port),
        AIBRAIN_API_PORT=str(api_port),
        BETTER_AUTH_URL=f"http://127.0.0.1:{auth_port}",
        BETTER_AUTH_SECRET=TEST_SECRET,
    )
    process = subprocess.Popen(
        [sys.executable, "-m", "aibrain", "serve"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{api_port}/ready").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "aibrain serve did not become ready in 30 s"
            time.sleep(0.1)
        jwt = sign_up(f"http://127.0.0.1:{auth_port}", "ivy@example.com")["jwt"]
        assert httpx.post(f"http://127.0.0.1:{api_port}/events", headers=bearer(jwt), json={"type": "t", "data": 1}).status_code == 201
    finally:
        process.send_signal(signal.SIGINT)
        code = process.wait(timeout=30)
    assert code == 0


def test_api_started_before_auth_recovers_without_restart(tmp_path):
    auth_port = free_port()
    api = start_api(tmp_path, f"http://127.0.0.1:{auth_port}")
    auth = None
    try:
        assert httpx.get(api.url + "/ready").status_code == 503
        auth = start_auth(tmp_path, port=auth_port)
        # The default refresh interval is 5 minutes; with no keys the API retries within seconds.
        deadline = time.monotonic() + 30
        while httpx.get(api.url + "/ready").status_code != 200:
            assert time.monotonic() < deadline, "the API did not fetch the keys within 30 s"
            time.sleep(0.2)
        jwt = sign_up(auth.url, "late@example.com")["jwt"]
        assert httpx.get(api.url + "/me", headers=bearer(jwt)).status_code == 200
    finally:
        api.stop()
        if auth is not None:
            auth.stop()


def test_write_quota_answers_429_over_http(tmp_path):
    auth = start_auth(tmp_path)
    api = start_api(tmp_path, auth.url, AIBRAIN_USER_EVENTS_PER_MINUTE="2")
    try:
        jwt = sign_up(auth.url, "quota@example.com")["jwt"]
        statuses = [
            httpx.post(api.url + "/events", headers=bearer(jwt), json={"type": "t", "data": index}).status_code
            for index in range(3)
        ]
        assert statuses == [201, 201, 429]
        listed = httpx.get(api.url + "/events", headers=bearer(jwt)).json()["events"]
        assert len(listed) == 2
    finally:
        api.stop()
        auth.stop()
