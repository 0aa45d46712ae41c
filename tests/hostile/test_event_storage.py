"""Per-user event stores under concurrent writers, a long write burst and SQL-like type filters.

The API runs as a real process; the tests open its SQLite files directly to check what was stored.
"""

from __future__ import annotations

import asyncio
import base64
import json
import socket
import sqlite3
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.hostile.conftest import ApiFactory, ApiUnderTest
from tests.hostile.support import assert_json_error, bearer, claims, pipelined_posts

WRITERS = 4
EVENTS_PER_WRITER = 500
READERS = 4
BURST_EVENTS = 20_000
BURST_CONNECTIONS = 4


@pytest.fixture(scope="module")
def api(api_factory: ApiFactory) -> ApiUnderTest:
    return api_factory()


def token_for(api: ApiUnderTest, user: str) -> str:
    return api.issuer.sign(claims(api.issuer, user), "rsa-1")


def events_db(api: ApiUnderTest, user: str) -> Path:
    return api.data_dir / "users" / user / "events.db"


def query(path: Path, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    with sqlite3.connect(path, timeout=10) as db:
        return db.execute(sql, params).fetchall()


# Concurrent first use and concurrent writers


def test_first_use_by_50_concurrent_posts(api: ApiUnderTest) -> None:
    user = "first-touch"
    headers = bearer(token_for(api, user))

    async def post_all() -> list[httpx.Response]:
        limits = httpx.Limits(max_connections=50)
        async with httpx.AsyncClient(base_url=api.url, limits=limits, timeout=30.0) as client:
            requests = [client.post("/events", headers=headers, json={"type": "t", "data": n}) for n in range(50)]
            return await asyncio.gather(*requests)

    responses = asyncio.run(post_all())

    assert [response.status_code for response in responses] == [201] * 50
    assert query(events_db(api, user), "PRAGMA journal_mode") == [("wal",)]
    assert query(events_db(api, user), "SELECT count(*) FROM events") == [(50,)]
    assert sorted(row[0] for row in query(events_db(api, user), "SELECT data FROM events")) == sorted(
        str(n) for n in range(50)
    )


def test_readers_never_see_partial_rows(api: ApiUnderTest) -> None:
    user = "busy-user"
    token = token_for(api, user)
    problems: list[str] = []
    pages_read: list[int] = []
    writers_done = threading.Event()

    def write(number: int) -> list[int]:
        bodies = [
            json.dumps({"type": f"writer-{number}", "data": {"writer": number, "sequence": sequence, "pad": "x" * 200}}).encode()
            for sequence in range(EVENTS_PER_WRITER)
        ]
        return pipelined_posts(api.service.port, "/events", token, bodies, batch=20)

    def read() -> None:
        # Bounded: it stops when the writers finish, which the pool below waits for.
        with httpx.Client(base_url=api.url, headers=bearer(token), timeout=30.0) as client:
            while not writers_done.is_set():
                response = client.get("/events", params={"limit": 100})
                if response.status_code != 200:
                    problems.append(f"status {response.status_code}: {response.text}")
                    continue
                pages_read.append(len(response.json()["events"]))
                for event in response.json()["events"]:
                    data = event["data"]
                    if event["type"] != f"writer-{data.get('writer')}" or data.get("pad") != "x" * 200:
                        problems.append(f"partial or mixed row: {event}")

    with ThreadPoolExecutor(max_workers=WRITERS + READERS) as pool:
        readers = [pool.submit(read) for _ in range(READERS)]
        results = list(pool.map(write, range(WRITERS)))
        writers_done.set()
        for reader in readers:
            reader.result()

    assert {status for statuses in results for status in statuses} == {201}
    assert problems == []
    assert len(pages_read) > 0
    assert query(events_db(api, user), "SELECT count(*) FROM events") == [(WRITERS * EVENTS_PER_WRITER,)]
    per_writer = query(events_db(api, user), "SELECT type, count(*) FROM events GROUP BY type ORDER BY type")
    assert per_writer == [(f"writer-{number}", EVENTS_PER_WRITER) for number in range(WRITERS)]


# A long write burst while readers drop their connections


def _drop_mid_read(port: int, token: str) -> None:
    """Ask for a full page and close the socket after the first bytes of the response."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as connection:
        connection.sendall(
            f"GET /events?limit=500 HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n\r\n".encode()
        )
        connection.recv(64)


def test_wal_stays_bounded_during_burst(api: ApiUnderTest) -> None:
    """Write 20,000 events while a client keeps dropping reads midway, then checkpoint from outside.

    The bound: SQLite checkpoints every 1000 WAL pages by default, so with no reader pinning the
    WAL its file stays near 1000 pages. Twice that (8 MiB at 4 KiB pages) leaves room for the last
    transactions. The API keeps its connection open and idle afterwards, and a TRUNCATE checkpoint
    from another connection must still succeed with busy = 0.
    """
    user = "burst-user"
    token = token_for(api, user)
    headers = bearer(token)
    wal_sizes: list[int] = []
    path = events_db(api, user)

    def drop_read_and_sample_wal() -> None:
        _drop_mid_read(api.service.port, token)
        wal = path.with_name("events.db-wal")
        if wal.exists():
            wal_sizes.append(wal.stat().st_size)

    def write(start: int) -> list[int]:
        bodies = [b'{"type":"burst","data":%d}' % number for number in range(start, BURST_EVENTS, BURST_CONNECTIONS)]
        # One connection drops a read after each of its batches, so reads interleave with the writes.
        after_batch = drop_read_and_sample_wal if start == 0 else None
        return pipelined_posts(api.service.port, "/events", token, bodies, after_batch=after_batch)

    with ThreadPoolExecutor(max_workers=BURST_CONNECTIONS) as pool:
        results = list(pool.map(write, range(BURST_CONNECTIONS)))

    assert {status for statuses in results for status in statuses} == {201}
    page_size = query(path, "PRAGMA page_size")[0][0]
    bound = 2 * 1000 * page_size
    assert wal_sizes, "the WAL file was never observed"
    assert max(wal_sizes) < bound
    assert path.with_name("events.db-wal").stat().st_size < bound
    busy, _log_frames, _checkpointed = query(path, "PRAGMA wal_checkpoint(TRUNCATE)")[0]
    assert busy == 0
    assert path.with_name("events.db-wal").stat().st_size == 0
    assert query(path, "SELECT count(*) FROM events") == [(BURST_EVENTS,)]
    assert httpx.get(api.url + "/events", headers=headers, params={"limit": 1}).status_code == 200


# Type filters with SQL and LIKE metacharacters

TRICKY_TYPES = ["a_b", "axb", "a%b", "A_B", "x'); DROP TABLE events;--", "a\\b", "a*b", "a?b", "[ab]", "a b"]


@pytest.fixture(scope="module")
def tricky_user(api: ApiUnderTest) -> dict[str, str]:
    headers = bearer(token_for(api, "tricky-user"))
    for event_type in TRICKY_TYPES:
        response = httpx.post(api.url + "/events", headers=headers, json={"type": event_type, "data": event_type})
        assert response.status_code == 201, response.text
    return headers


@pytest.mark.parametrize("event_type", TRICKY_TYPES)
def test_type_filter_matches_exactly(api: ApiUnderTest, tricky_user: dict[str, str], event_type: str) -> None:
    response = httpx.get(api.url + "/events", headers=tricky_user, params={"type": event_type})

    assert response.status_code == 200
    assert [event["type"] for event in response.json()["events"]] == [event_type]


@pytest.mark.parametrize("pattern", ["%", "_", "a%", "%b", "a_", "*", "a_B", "' OR '1'='1", "a%b' OR 1=1 --"])
def test_type_filter_wildcards_match_nothing(api: ApiUnderTest, tricky_user: dict[str, str], pattern: str) -> None:
    response = httpx.get(api.url + "/events", headers=tricky_user, params={"type": pattern})

    assert response.status_code == 200
    assert response.json()["events"] == []


def test_injection_left_table_intact(api: ApiUnderTest, tricky_user: dict[str, str]) -> None:
    rows = query(events_db(api, "tricky-user"), "SELECT count(*) FROM events")

    assert rows == [(len(TRICKY_TYPES),)]


@pytest.mark.parametrize(
    "params",
    [
        [("type", "")],
        [("type", "a_b"), ("type", "axb")],
        [("type", "a_b"), ("type", "a_b")],
        [("limit", "1"), ("limit", "2")],
        [("cursor", "a"), ("cursor", "b")],
    ],
    ids=["empty-type", "two-types", "same-type-twice", "two-limits", "two-cursors"],
)
def test_empty_or_repeated_query_rejected(api: ApiUnderTest, tricky_user: dict[str, str], params: list[tuple[str, str]]) -> None:
    response = httpx.get(api.url + "/events", headers=tricky_user, params=params)

    assert_json_error(response, 400, "INVALID_QUERY")


@pytest.mark.parametrize(
    "limit",
    ["1; DROP TABLE events", "1 OR 1=1", "-1", "0", "1e3", "0x10", "１", "501", "99999999999999999999", " 1", "1.0", "NaN", ""],
)
def test_limit_with_sql_or_junk_rejected(api: ApiUnderTest, tricky_user: dict[str, str], limit: str) -> None:
    response = httpx.get(api.url + "/events", headers=tricky_user, params={"limit": limit})

    assert_json_error(response, 400, "INVALID_QUERY")


def _cursor(value: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()


@pytest.mark.parametrize(
    "cursor",
    [
        "' OR '1'='1",
        "1; DROP TABLE events",
        _cursor(["2026-01-01T00:00:00.000Z' OR '1'='1", 1]),
        _cursor(["2026-01-01T00:00:00.000Z", "1 OR 1=1"]),
        _cursor(["2026-01-01T00:00:00.000Z", -1]),
        _cursor(["2026-01-01T00:00:00.000Z", 2**64]),
        _cursor(["2026-01-01T00:00:00.000Z"]),
        _cursor({"created_at": "2026-01-01T00:00:00.000Z", "id": 1}),
        _cursor(None),
        "A" * 10_000,
        "====",
        "%00",
    ],
)
def test_cursor_with_sql_or_junk_rejected(api: ApiUnderTest, tricky_user: dict[str, str], cursor: str) -> None:
    response = httpx.get(api.url + "/events", headers=tricky_user, params={"cursor": cursor})

    assert_json_error(response, 400, "INVALID_CURSOR")


def test_api_log_has_no_traceback(api: ApiUnderTest) -> None:
    log = api.service.log_text()

    assert "Traceback" not in log
    assert " ERROR " not in log
