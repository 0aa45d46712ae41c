"""Crash safety: SIGKILL both services in the middle of concurrent writes, restart, and audit the data.

Each scenario runs once per module, and the tests below it check one property each. A write counts
as acknowledged only when its response arrived: 201 for events, 200 for sign-ups. Writes still in
flight at the kill may or may not be kept.
"""

from __future__ import annotations

import os
import signal
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.faults.conftest import KID
from tests.faults.support import bearer, integrity_check, list_all_events, user_token, worker_pid
from tests.fixtures.issuer import StubIssuer
from tests.servers import start_api, start_auth

EVENT_WRITERS = 8
EVENT_USERS = 4
EVENTS_BEFORE_KILL = 200
SIGN_UP_WRITERS = 6
SIGN_UPS_BEFORE_KILL = 15
# Upper bound of requests per writer thread, so that a kill that never lands cannot loop forever.
MAX_REQUESTS_PER_WRITER = 3_000
PASSWORD = "crash-test-password-1"
ACK_WAIT_SECONDS = 60.0


@dataclass
class WriteLog:
    """What the writer threads saw: acknowledged writes, unexpected responses, and how each thread ended."""

    acknowledged: list[tuple[str, Any, dict[str, Any]]] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    ended_by_transport_error: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)
    enough: threading.Event = field(default_factory=threading.Event)


@dataclass
class EventsCrash:
    log: WriteLog
    listed: dict[str, dict[int, dict[str, Any]]]
    store_paths: list[Path]
    integrity: dict[str, list[str]]


def _write_events(api_url: str, writer: int, sub: str, token: str, log: WriteLog) -> None:
    with httpx.Client(timeout=30.0) as client:
        for seq in range(MAX_REQUESTS_PER_WRITER):
            # Bodies differ in size and content so that a torn or mixed-up row would show.
            sent = {"writer": writer, "seq": seq, "text": "é✓" * (seq % 40), "nested": {"list": list(range(seq % 7))}}
            try:
                response = client.post(api_url + "/events", headers=bearer(token), json={"type": f"w{writer}", "data": sent})
            except httpx.TransportError:
                with log.lock:
                    log.ended_by_transport_error += 1
                return
            with log.lock:
                if response.status_code != 201:
                    log.unexpected.append(f"writer {writer} seq {seq}: {response.status_code} {response.text[:200]}")
                    return
                log.acknowledged.append((sub, sent, response.json()))
                if len(log.acknowledged) >= EVENTS_BEFORE_KILL:
                    log.enough.set()


@pytest.fixture(scope="module")
def events_crash(tmp_path_factory: pytest.TempPathFactory) -> EventsCrash:
    """Kill the API with SIGKILL while 8 threads write events for 4 users, then restart it and read back."""
    data_dir = tmp_path_factory.mktemp("events-crash")
    with StubIssuer() as issuer:
        issuer.add_key("RS256", KID)
        subs = [f"crash-user-{number}" for number in range(EVENT_USERS)]
        tokens = {sub: user_token(issuer, KID, sub) for sub in subs}
        log = WriteLog()

        api = start_api(data_dir, issuer.url)
        threads = [
            threading.Thread(
                target=_write_events,
                args=(api.url, writer, subs[writer % EVENT_USERS], tokens[subs[writer % EVENT_USERS]], log),
            )
            for writer in range(EVENT_WRITERS)
        ]
        for thread in threads:
            thread.start()
        log.enough.wait(ACK_WAIT_SECONDS)
        api.kill()
        for thread in threads:
            thread.join(ACK_WAIT_SECONDS)

        restarted = start_api(data_dir, issuer.url)
        try:
            with httpx.Client(timeout=30.0) as client:
                listed = {
                    sub: {event["id"]: event for event in list_all_events(client, restarted.url, tokens[sub])}
                    for sub in subs
                }
            store_paths = sorted((data_dir / "users").glob("*/events.db"))
            integrity = {str(path): integrity_check(path) for path in store_paths}
        finally:
            restarted.stop()
    listed_count = sum(map(len, listed.values()))
    print(f"\nevents crash: {len(log.acknowledged)} acknowledged, {listed_count} listed after restart")
    return EventsCrash(log, listed, store_paths, integrity)


def test_api_crash_happens_mid_stream(events_crash: EventsCrash) -> None:
    # Every writer was still sending when the process died, so the kill really hit live traffic.
    assert events_crash.log.ended_by_transport_error == EVENT_WRITERS


def test_api_crash_writers_saw_only_201(events_crash: EventsCrash) -> None:
    assert events_crash.log.unexpected == []


def test_api_crash_acknowledged_enough_events(events_crash: EventsCrash) -> None:
    assert len(events_crash.log.acknowledged) >= EVENTS_BEFORE_KILL


def test_api_crash_loses_no_acknowledged_event(events_crash: EventsCrash) -> None:
    missing = [
        (sub, created["id"])
        for sub, _sent, created in events_crash.log.acknowledged
        if created["id"] not in events_crash.listed[sub]
    ]
    assert missing == []


def test_api_crash_keeps_events_intact(events_crash: EventsCrash) -> None:
    changed = [
        (sub, created, events_crash.listed[sub].get(created["id"]))
        for sub, _sent, created in events_crash.log.acknowledged
        if events_crash.listed[sub].get(created["id"]) != created
    ]
    assert changed == []


def test_api_crash_acknowledged_bodies_match_sent(events_crash: EventsCrash) -> None:
    mismatched = [(sent, created) for _sub, sent, created in events_crash.log.acknowledged if created["data"] != sent]
    assert mismatched == []


def test_api_crash_touched_every_user_store(events_crash: EventsCrash) -> None:
    assert [path.parent.name for path in events_crash.store_paths] == sorted(events_crash.listed)


def test_api_crash_stores_pass_integrity_check(events_crash: EventsCrash) -> None:
    assert events_crash.integrity == {str(path): ["ok"] for path in events_crash.store_paths}


@dataclass
class AuthCrash:
    log: WriteLog
    sign_in_status: dict[str, int]
    integrity: list[str]


def _sign_up(auth_url: str, writer: int, log: WriteLog) -> None:
    with httpx.Client(timeout=30.0) as client:
        for seq in range(MAX_REQUESTS_PER_WRITER):
            email = f"crash-{writer}-{seq}@example.com"
            body = {"name": f"Crash {writer} {seq}", "email": email, "password": PASSWORD}
            try:
                response = client.post(auth_url + "/api/auth/sign-up/email", json=body)
            except httpx.TransportError:
                with log.lock:
                    log.ended_by_transport_error += 1
                return
            # A session cookie would make the next POST a cookie-authenticated one that needs an Origin.
            client.cookies.clear()
            with log.lock:
                if response.status_code != 200:
                    log.unexpected.append(f"{email}: {response.status_code} {response.text[:200]}")
                    return
                log.acknowledged.append((email, body, response.json()))
                if len(log.acknowledged) >= SIGN_UPS_BEFORE_KILL:
                    log.enough.set()


@pytest.fixture(scope="module")
def auth_crash(tmp_path_factory: pytest.TempPathFactory) -> AuthCrash:
    """Kill the auth service with SIGKILL during 6 threads of sign-ups, restart it, and sign in each one."""
    data_dir = tmp_path_factory.mktemp("auth-crash")
    log = WriteLog()
    auth = start_auth(data_dir)
    threads = [threading.Thread(target=_sign_up, args=(auth.url, writer, log)) for writer in range(SIGN_UP_WRITERS)]
    for thread in threads:
        thread.start()
    log.enough.wait(ACK_WAIT_SECONDS)
    auth.kill()
    for thread in threads:
        thread.join(ACK_WAIT_SECONDS)

    # The same port keeps BETTER_AUTH_URL, and with it the trusted origin, unchanged.
    restarted = start_auth(data_dir, port=auth.port)
    try:
        sign_in_status = {
            email: httpx.post(
                restarted.url + "/api/auth/sign-in/email", json={"email": email, "password": PASSWORD}, timeout=30.0
            ).status_code
            for email, _body, _created in log.acknowledged
        }
        integrity = integrity_check(data_dir / "auth.db")
    finally:
        restarted.stop()
    print(f"\nauth crash: {len(log.acknowledged)} sign-ups acknowledged, {len(sign_in_status)} sign-ins tried")
    return AuthCrash(log, sign_in_status, integrity)


def test_auth_crash_happens_mid_stream(auth_crash: AuthCrash) -> None:
    assert auth_crash.log.ended_by_transport_error == SIGN_UP_WRITERS


def test_auth_crash_sign_ups_saw_only_200(auth_crash: AuthCrash) -> None:
    assert auth_crash.log.unexpected == []


def test_auth_crash_acknowledged_enough_sign_ups(auth_crash: AuthCrash) -> None:
    assert len(auth_crash.log.acknowledged) >= SIGN_UPS_BEFORE_KILL


def test_auth_crash_every_acknowledged_user_signs_in(auth_crash: AuthCrash) -> None:
    assert auth_crash.sign_in_status == {email: 200 for email in auth_crash.sign_in_status}


def test_auth_crash_database_passes_integrity_check(auth_crash: AuthCrash) -> None:
    assert auth_crash.integrity == ["ok"]


def test_api_worker_crash_is_survived(tmp_path: Path, issuer: StubIssuer) -> None:
    # A worker can die alone, for example by SIGBUS when a mapped -shm file becomes unwritable.
    api = start_api(tmp_path, issuer.url)
    try:
        os.kill(worker_pid(api), signal.SIGKILL)
        statuses: list[int | str] = []
        for _attempt in range(100):
            try:
                statuses.append(httpx.get(api.url + "/health", timeout=1.0).status_code)
            except httpx.TransportError as exc:
                statuses.append(type(exc).__name__)
            if statuses[-1] == 200 or api.process.poll() is not None:
                break
            threading.Event().wait(0.1)
    finally:
        api.kill()
    assert statuses[-1] == 200
