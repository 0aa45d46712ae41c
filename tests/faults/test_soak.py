"""A bounded soak of the events API: 60 s of mixed reads and writes from 50 users over 300 connections.

The load runs on loopback against one API process with default settings. At the end every
acknowledged event must be listed back unchanged, no request may have failed, and the worker's
resident memory must be back near where it started. The scenario runs once per module, and its
numbers are printed (`pytest -s`) for the record.
"""

from __future__ import annotations

import asyncio
import os
import random
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from tests.faults.support import bearer, list_all_events, open_fd_count, rss_bytes, user_token, worker_pid
from tests.fixtures.issuer import StubIssuer
from tests.servers import start_api

pytestmark = pytest.mark.slow

SOAK_SECONDS = 60.0
USERS = 50
CONNECTIONS = 300
WRITE_SHARE = 0.6
# A hard cap on requests per connection, so that the loop ends even if the clock misbehaves.
MAX_REQUESTS_PER_CONNECTION = 5_000
SAMPLE_INTERVAL_SECONDS = 0.5
# A generous bound, not a tight one, because CPython often keeps freed memory instead of
# returning it to the OS.
RSS_FACTOR = 2
RSS_SLACK_BYTES = 50 * 1024 * 1024


@dataclass
class SoakResult:
    statuses: Counter[int] = field(default_factory=Counter)
    transport_errors: Counter[str] = field(default_factory=Counter)
    acknowledged: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    listed: dict[str, dict[int, dict[str, Any]]] = field(default_factory=dict)
    rss_start: int = 0
    rss_peak: int = 0
    rss_end: int = 0
    max_sockets: int = 0
    max_fds: int = 0
    requests: int = 0
    seconds: float = 0.0


def _socket_count(pid: int) -> int:
    count = 0
    for name in os.listdir(f"/proc/{pid}/fd"):
        try:
            if os.readlink(f"/proc/{pid}/fd/{name}").startswith("socket:"):
                count += 1
        except FileNotFoundError:
            continue
    return count


async def _connection(
    number: int, client: httpx.AsyncClient, tokens: dict[str, str], deadline: float, result: SoakResult
) -> None:
    rng = random.Random(number)
    subs = list(tokens)
    for seq in range(MAX_REQUESTS_PER_CONNECTION):
        if time.monotonic() >= deadline:
            return
        sub = rng.choice(subs)
        headers = bearer(tokens[sub])
        write = rng.random() < WRITE_SHARE
        try:
            if write:
                sent = {"connection": number, "seq": seq, "note": "soak " * rng.randrange(1, 40)}
                response = await client.post("/events", headers=headers, json={"type": f"t{seq % 5}", "data": sent})
                if response.status_code == 201:
                    result.acknowledged[sub].append(response.json())
            else:
                params: dict[str, Any] = {"limit": rng.choice((1, 20, 100))}
                if rng.random() < 0.5:
                    params["type"] = f"t{rng.randrange(5)}"
                response = await client.get("/events", headers=headers, params=params)
        except httpx.TransportError as exc:
            method = "POST" if write else "GET"
            result.transport_errors[f"{method} {type(exc).__name__}: {exc}"] += 1
            continue
        result.statuses[response.status_code] += 1


async def _sample(pid: int, result: SoakResult, done: asyncio.Event) -> None:
    while not done.is_set():
        result.rss_peak = max(result.rss_peak, rss_bytes(pid))
        result.max_sockets = max(result.max_sockets, _socket_count(pid))
        result.max_fds = max(result.max_fds, open_fd_count(pid))
        try:
            await asyncio.wait_for(done.wait(), SAMPLE_INTERVAL_SECONDS)
        except TimeoutError:
            continue


async def _run_load(api_url: str, pid: int, tokens: dict[str, str], result: SoakResult) -> None:
    limits = httpx.Limits(max_connections=CONNECTIONS, max_keepalive_connections=CONNECTIONS)
    done = asyncio.Event()
    async with httpx.AsyncClient(base_url=api_url, limits=limits, timeout=30.0) as client:
        sampler = asyncio.create_task(_sample(pid, result, done))
        started = time.monotonic()
        deadline = started + SOAK_SECONDS
        await asyncio.gather(*(_connection(number, client, tokens, deadline, result) for number in range(CONNECTIONS)))
        result.seconds = time.monotonic() - started
        done.set()
        await sampler


@pytest.fixture(scope="module")
def soak(tmp_path_factory: pytest.TempPathFactory) -> SoakResult:
    """Run the load, then read every user's events back and measure the worker's memory."""
    data_dir = tmp_path_factory.mktemp("soak")
    result = SoakResult()
    with StubIssuer() as issuer:
        kid = issuer.add_key("EdDSA", "ed-soak")
        tokens = {f"soak-{number:02d}": user_token(issuer, kid, f"soak-{number:02d}") for number in range(USERS)}
        result.acknowledged = {sub: [] for sub in tokens}
        api = start_api(data_dir, issuer.url)
        try:
            pid = worker_pid(api)
            result.rss_start = result.rss_peak = rss_bytes(pid)
            asyncio.run(_run_load(api.url, pid, tokens, result))

            with httpx.Client(timeout=60.0) as client:
                for sub, token in tokens.items():
                    result.listed[sub] = {event["id"]: event for event in list_all_events(client, api.url, token)}
            result.rss_end = rss_bytes(pid)
        finally:
            api.stop()

    result.requests = sum(result.statuses.values())
    mib = 1024 * 1024
    print(
        f"\nsoak: {result.requests} responses in {result.seconds:.1f} s ({result.requests / result.seconds:.0f}/s), "
        f"statuses {dict(result.statuses)}, transport errors {dict(result.transport_errors)}, "
        f"{sum(map(len, result.acknowledged.values()))} events acknowledged; peak {result.max_sockets} sockets and "
        f"{result.max_fds} descriptors; worker RSS start {result.rss_start / mib:.1f} MiB, "
        f"peak {result.rss_peak / mib:.1f} MiB, end {result.rss_end / mib:.1f} MiB"
    )
    return result


def test_soak_no_server_errors(soak: SoakResult) -> None:
    assert {status: count for status, count in soak.statuses.items() if status >= 500} == {}


def test_soak_no_client_errors(soak: SoakResult) -> None:
    assert {status: count for status, count in soak.statuses.items() if 400 <= status < 500} == {}


def test_soak_no_transport_errors(soak: SoakResult) -> None:
    assert dict(soak.transport_errors) == {}


def test_soak_reached_hundreds_of_connections(soak: SoakResult) -> None:
    # Proves that the load really held a few hundred connections open at once on the server.
    assert soak.max_sockets >= CONNECTIONS // 2


def test_soak_loses_no_event(soak: SoakResult) -> None:
    missing = [
        (sub, event["id"]) for sub, events in soak.acknowledged.items() for event in events if event["id"] not in soak.listed[sub]
    ]
    assert missing == []


def test_soak_keeps_events_intact(soak: SoakResult) -> None:
    changed = [
        event for sub, events in soak.acknowledged.items() for event in events if soak.listed[sub].get(event["id"]) != event
    ]
    assert changed == []


def test_soak_lists_no_unacknowledged_event(soak: SoakResult) -> None:
    # When every POST got a response (no transport errors), no event may exist without an acknowledgement.
    extra = {sub: len(soak.listed[sub]) - len(events) for sub, events in soak.acknowledged.items() if len(soak.listed[sub]) != len(events)}
    assert extra == {}


def test_soak_rss_returns_near_start(soak: SoakResult) -> None:
    assert soak.rss_end < RSS_FACTOR * soak.rss_start + RSS_SLACK_BYTES
