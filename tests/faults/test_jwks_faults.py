"""JWKS outages seen by the events API as a real process, with the stub issuer as its auth server.

The API runs with a short refresh interval and fetch timeout, so that each state of the issuer is
reached within a second or two. Waits poll for a condition (the issuer's fetch counter, /ready)
with a deadline. Every token is signed fresh, so that the API's cache of verified tokens never
replaces a key lookup.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.faults.conftest import KID
from tests.faults.support import bearer, user_token
from tests.fixtures.issuer import Mode, StubIssuer
from tests.servers import Service, free_port, start_api

REFRESH_INTERVAL_SECONDS = 0.3
FETCH_TIMEOUT_SECONDS = 1.0
# Slack on top of the fetch timeout for one request's own work on a busy machine.
RESPONSE_SLACK_SECONDS = 4.0
WAIT_SECONDS = 20.0
FAILED_MODES: list[Mode] = ["error", "garbage", "empty", "hang"]
UNPUBLISHED_KID = "rsa-never-published"

_token_numbers = itertools.count()


def _api_env() -> dict[str, str]:
    return {
        "AIBRAIN_JWKS_REFRESH_INTERVAL": str(REFRESH_INTERVAL_SECONDS),
        "AIBRAIN_JWKS_FETCH_TIMEOUT": str(FETCH_TIMEOUT_SECONDS),
    }


def _fresh_token(issuer: StubIssuer, kid: str = KID) -> str:
    """Sign a token no earlier request used, so that the API must look its key up again."""
    return user_token(issuer, kid, f"jwks-user-{next(_token_numbers)}")


def _me(api: Service, token: str) -> httpx.Response:
    return httpx.get(api.url + "/me", headers=bearer(token), timeout=FETCH_TIMEOUT_SECONDS + RESPONSE_SLACK_SECONDS)


def _wait_for(condition: Callable[[], bool], description: str) -> None:
    """Poll `condition` until it is true; fail the test naming `description` after WAIT_SECONDS."""
    pause = threading.Event()
    for _ in range(int(WAIT_SECONDS / 0.05)):
        if condition():
            return
        pause.wait(0.05)
    pytest.fail(f"timed out after {WAIT_SECONDS} s waiting for {description}")


def _ready_status(api: Service) -> int:
    return httpx.get(api.url + "/ready", timeout=5.0).status_code


@pytest.fixture
def issuer_with_spare_key(issuer: StubIssuer) -> StubIssuer:
    """The issuer plus a private key whose public key is never published (an unknown kid)."""
    issuer.add_key("RS256", UNPUBLISHED_KID, publish=False)
    return issuer


@dataclass
class DownAtStart:
    ready_before: int
    me_before: httpx.Response
    ready_after_recovery: int
    me_after_recovery: httpx.Response


@pytest.fixture(scope="module", params=FAILED_MODES)
def down_at_start(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> DownAtStart:
    """Start the API while the JWKS fails in one mode, call it, then bring the JWKS back and call again."""
    mode: Mode = request.param
    data_dir = tmp_path_factory.mktemp(f"jwks-down-at-start-{mode}")
    with StubIssuer() as issuer:
        issuer.add_key("RS256", KID)
        issuer.set_mode(mode)
        api = start_api(data_dir, issuer.url, **_api_env())
        try:
            ready_before = _ready_status(api)
            me_before = _me(api, _fresh_token(issuer))
            issuer.set_mode("ok")
            _wait_for(lambda: _ready_status(api) == 200, "/ready to return 200 after the JWKS came back")
            ready_after_recovery = _ready_status(api)
            me_after_recovery = _me(api, _fresh_token(issuer))
        finally:
            issuer.set_mode("ok")
            api.stop()
    return DownAtStart(ready_before, me_before, ready_after_recovery, me_after_recovery)


def test_jwks_down_at_start_ready_is_503(down_at_start: DownAtStart) -> None:
    assert down_at_start.ready_before == 503


def test_jwks_down_at_start_request_is_503(down_at_start: DownAtStart) -> None:
    assert down_at_start.me_before.status_code == 503


def test_jwks_down_at_start_error_code(down_at_start: DownAtStart) -> None:
    assert down_at_start.me_before.json()["code"] == "AUTH_UNAVAILABLE"


def test_jwks_down_at_start_sends_retry_after(down_at_start: DownAtStart) -> None:
    assert "retry-after" in down_at_start.me_before.headers


def test_jwks_down_at_start_recovers_ready(down_at_start: DownAtStart) -> None:
    assert down_at_start.ready_after_recovery == 200


def test_jwks_down_at_start_recovers_requests(down_at_start: DownAtStart) -> None:
    assert down_at_start.me_after_recovery.status_code == 200


def test_jwks_unreachable_at_start_is_503(tmp_path: Path, issuer: StubIssuer) -> None:
    # Nothing listens on this port, so every fetch fails with a refused connection.
    auth_url = f"http://127.0.0.1:{free_port()}"
    token = user_token(issuer, KID, "unreachable-user", iss=auth_url, aud=auth_url)
    api = start_api(tmp_path, auth_url, **_api_env())
    try:
        ready = _ready_status(api)
        me = _me(api, token)
    finally:
        api.stop()
    assert ready == 503
    assert me.status_code == 503
    assert me.json()["code"] == "AUTH_UNAVAILABLE"


@dataclass
class DownLater:
    mode: Mode
    me_known_kid: httpx.Response
    ready: int
    me_unknown_kid: httpx.Response
    jwks_url: str
    log: str


@pytest.fixture(scope="module", params=FAILED_MODES)
def down_later(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> DownLater:
    """Cache the keys, let at least two background refreshes fail in one mode, then call the API."""
    mode: Mode = request.param
    data_dir = tmp_path_factory.mktemp(f"jwks-down-later-{mode}")
    with StubIssuer() as issuer:
        issuer.add_key("RS256", KID)
        issuer.add_key("RS256", UNPUBLISHED_KID, publish=False)
        api = start_api(data_dir, issuer.url, **_api_env())
        try:
            _wait_for(lambda: _ready_status(api) == 200, "the API to fetch the keys at start")
            if _me(api, _fresh_token(issuer)).status_code != 200:
                pytest.fail(f"a valid token was rejected before any fault:\n{api.log_text()}")

            issuer.set_mode(mode)
            fetches_at_switch = issuer.fetches
            # After two more fetches, the first one in the failing mode has finished or timed out.
            _wait_for(lambda: issuer.fetches >= fetches_at_switch + 2, f"two JWKS refreshes in mode {mode}")
            me_known_kid = _me(api, _fresh_token(issuer))
            ready = _ready_status(api)
            # The client timeout is the fetch timeout plus slack, so a request stuck behind a
            # hanging fetch raises a timeout here instead of passing late.
            me_unknown_kid = _me(api, _fresh_token(issuer, UNPUBLISHED_KID))
        finally:
            issuer.set_mode("ok")
            api.stop()
    print(
        f"\nJWKS {mode} after start: known kid {me_known_kid.status_code} in "
        f"{me_known_kid.elapsed.total_seconds():.3f} s, unknown kid {me_unknown_kid.status_code} in "
        f"{me_unknown_kid.elapsed.total_seconds():.3f} s (fetch timeout {FETCH_TIMEOUT_SECONDS} s)"
    )
    return DownLater(mode, me_known_kid, ready, me_unknown_kid, issuer.jwks_url, api.log_text())


def test_jwks_down_later_cached_keys_still_work(down_later: DownLater) -> None:
    assert down_later.me_known_kid.status_code == 200


def test_jwks_down_later_ready_stays_200(down_later: DownLater) -> None:
    assert down_later.ready == 200


def test_jwks_down_later_unknown_kid_is_401(down_later: DownLater) -> None:
    assert down_later.me_unknown_kid.status_code == 401


def test_jwks_down_later_logs_failed_refresh(down_later: DownLater) -> None:
    assert f"JWKS fetch from {down_later.jwks_url} failed, keeping 1 cached keys" in down_later.log


def test_jwks_hang_does_not_delay_known_kid(tmp_path: Path, issuer_with_spare_key: StubIssuer) -> None:
    """While an unknown-kid refetch hangs, a request with a cached kid completes before it."""
    issuer = issuer_with_spare_key
    # A long refresh interval leaves the unknown kid's refetch as the only fetch in hang mode.
    env = {**_api_env(), "AIBRAIN_JWKS_REFRESH_INTERVAL": "600"}
    api = start_api(tmp_path, issuer.url, **env)
    try:
        _wait_for(lambda: _ready_status(api) == 200, "the API to fetch the keys at start")
        issuer.set_mode("hang")
        fetches_at_switch = issuer.fetches
        order: list[str] = []

        def unknown_kid_request() -> None:
            _me(api, _fresh_token(issuer, UNPUBLISHED_KID))
            order.append("unknown kid")

        waiting = threading.Thread(target=unknown_kid_request)
        waiting.start()
        _wait_for(lambda: issuer.fetches > fetches_at_switch, "the refetch to reach the hanging issuer")
        known = _me(api, _fresh_token(issuer))
        order.append("known kid")
        waiting.join()
    finally:
        issuer.set_mode("ok")
        api.stop()

    assert known.status_code == 200
    assert order == ["known kid", "unknown kid"]
