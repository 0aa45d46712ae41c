"""Tests of the per-user SQLite stores and their LRU pool, on real files in a temporary folder."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aibrain.api.cursor import CursorError, decode_cursor, encode_cursor
from aibrain.api.storage import MIGRATIONS, EventStore, StorageError, format_timestamp, user_dir_name
from aibrain.api.stores import StorePool
from tests.api.support import FakeClock


def open_store(path: Path, clock: FakeClock) -> EventStore:
    return EventStore.open(path / "u" / "events.db", synchronous="NORMAL", busy_timeout_ms=1000, clock=clock)


@given(st.text(min_size=1, max_size=300))
def test_user_dir_name_stays_inside_users_dir(sub: str) -> None:
    users_dir = Path("/srv/data/users")
    name = user_dir_name(sub)

    resolved = (users_dir / name / "events.db").resolve()

    assert resolved.parent.parent == users_dir
    assert "/" not in name
    assert name not in (".", "..")


@pytest.mark.parametrize("sub", ["abcDEF123_-", "a" * 64])
def test_user_dir_name_keeps_plain_sub(sub: str) -> None:
    assert user_dir_name(sub) == sub


@pytest.mark.parametrize("sub", ["../x", "a.b", "a" * 65, "", "é", "a b", "h-" + "0" * 64])
def test_user_dir_name_hashes_other_sub(sub: str) -> None:
    name = user_dir_name(sub)

    assert name.startswith("h-")
    assert len(name) == 66


def test_user_dir_name_hash_never_equals_plain_sub() -> None:
    hashed = user_dir_name("a.b")

    assert user_dir_name(hashed) != hashed


def test_format_timestamp_has_milliseconds() -> None:
    assert format_timestamp(0.0015) == "1970-01-01T00:00:00.001Z"


def test_store_open_sets_wal_and_schema(tmp_path: Path, clock: FakeClock) -> None:
    store = open_store(tmp_path, clock)

    journal = store.execute_for_tests("PRAGMA journal_mode")
    version = store.execute_for_tests("PRAGMA user_version")
    indexes = store.execute_for_tests("SELECT name FROM sqlite_master WHERE type = 'index' ORDER BY name")
    store.close()

    assert journal == [("wal",)]
    assert version == [(len(MIGRATIONS),)]
    assert indexes == [("events_created_at",), ("events_type_created_at",)]


def test_store_reopen_skips_done_migrations(tmp_path: Path, clock: FakeClock) -> None:
    open_store(tmp_path, clock).close()

    store = open_store(tmp_path, clock)
    version = store.execute_for_tests("PRAGMA user_version")
    store.close()

    assert version == [(len(MIGRATIONS),)]


def test_store_page_newest_first_with_type_filter(tmp_path: Path, clock: FakeClock) -> None:
    store = open_store(tmp_path, clock)
    for index, event_type in enumerate(["a_b", "axb", "a%b", "A_B", "x'); DROP TABLE events;--", "a_b"]):
        clock.advance(1)
        store.append(event_type, str(index))

    exact = store.page("a_b", 10, None)
    injection = store.page("x'); DROP TABLE events;--", 10, None)
    percent = store.page("%", 10, None)
    every = store.page(None, 10, None)
    store.close()

    assert [row.data for row in exact] == ["5", "0"]
    assert [row.data for row in injection] == ["4"]
    assert percent == []
    assert [row.data for row in every] == ["5", "4", "3", "2", "1", "0"]


def test_store_page_continues_after_position(tmp_path: Path, clock: FakeClock) -> None:
    store = open_store(tmp_path, clock)
    rows = [store.append("t", str(index)) for index in range(5)]  # same millisecond: ids break the tie

    page = store.page(None, 2, (rows[3].created_at, rows[3].id))
    store.close()

    assert [row.id for row in page] == [3, 2]


def test_store_full_disk_raises_storage_error(tmp_path: Path, clock: FakeClock) -> None:
    store = open_store(tmp_path, clock)
    pages = store.execute_for_tests("PRAGMA page_count")[0][0]
    store.execute_for_tests(f"PRAGMA max_page_count = {pages}")

    with pytest.raises(StorageError) as caught:
        for _ in range(200):
            store.append("t", "x" * 1000)
    store.close()

    assert caught.value.full is True


def test_store_read_only_raises_storage_error(tmp_path: Path, clock: FakeClock) -> None:
    store = open_store(tmp_path, clock)
    store.append("t", "1")
    store.execute_for_tests("PRAGMA query_only = 1")

    with pytest.raises(StorageError) as caught:
        store.append("t", "2")
    rows = store.page(None, 10, None)
    store.close()

    assert caught.value.full is False
    assert len(rows) == 1


def test_store_open_in_unwritable_place_raises_storage_error(tmp_path: Path, clock: FakeClock) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")

    with pytest.raises(StorageError):
        EventStore.open(blocker / "u" / "events.db", synchronous="NORMAL", busy_timeout_ms=0, clock=clock)


def test_store_close_checkpoints_wal(tmp_path: Path, clock: FakeClock) -> None:
    store = open_store(tmp_path, clock)
    for index in range(100):
        store.append("t", str(index))
    wal = store.path.with_name("events.db-wal")

    store.close()

    assert not wal.exists() or wal.stat().st_size == 0
    with sqlite3.connect(store.path) as check:
        assert check.execute("SELECT count(*) FROM events").fetchone() == (100,)
    check.close()


def test_cursor_round_trip() -> None:
    assert decode_cursor(encode_cursor("2026-01-02T03:04:05.678Z", 42)) == ("2026-01-02T03:04:05.678Z", 42)


@pytest.mark.parametrize(
    "cursor",
    ["", "!!!", "a", "x" * 200, encode_cursor("yesterday", 1), encode_cursor("2026-01-02T03:04:05.678Z", 0), "WzEsMl0", "bnVsbA"],
)
def test_cursor_rejects_foreign_values(cursor: str) -> None:
    with pytest.raises(CursorError):
        decode_cursor(cursor)


def test_cursor_rejects_huge_id() -> None:
    with pytest.raises(CursorError):
        decode_cursor(encode_cursor("2026-01-02T03:04:05.678Z", 2**70))


def make_pool(tmp_path: Path, clock: FakeClock, max_open: int) -> StorePool:
    return StorePool(tmp_path / "users", max_open=max_open, synchronous="NORMAL", busy_timeout_ms=1000, clock=clock)


def test_pool_evicts_least_recently_used(tmp_path: Path, clock: FakeClock) -> None:
    pool = make_pool(tmp_path, clock, max_open=2)

    async def scenario() -> list[EventStore]:
        stores = []
        for sub in ["alice", "bob", "alice", "carol"]:
            async with pool.acquire(sub) as store:
                stores.append(store)
        return stores

    alice, bob, _, carol = asyncio.run(scenario())

    assert bob.closed is True
    assert alice.closed is False
    assert pool.open_count == 2
    asyncio.run(pool.close())
    assert carol.closed is True


def test_pool_never_closes_store_in_use(tmp_path: Path, clock: FakeClock) -> None:
    pool = make_pool(tmp_path, clock, max_open=1)
    events: list[str] = []

    async def scenario() -> tuple[bool, int]:
        alice_acquired = asyncio.Event()

        async def hold_alice() -> bool:
            async with pool.acquire("alice") as alice:
                alice_acquired.set()
                await asyncio.sleep(0)  # Let bob's request reach the full pool.
                events.append("alice done")
                return not alice.closed

        async def write_bob() -> None:
            await alice_acquired.wait()
            async with pool.acquire("bob") as bob:
                events.append("bob opened")
                await pool.run(bob.append, "t", "1")

        alice_was_open, _ = await asyncio.gather(hold_alice(), write_bob())
        return alice_was_open, pool.open_count

    alice_was_open, open_after = asyncio.run(scenario())
    asyncio.run(pool.close())

    assert alice_was_open is True
    assert events == ["alice done", "bob opened"]
    assert open_after == 1


def test_pool_concurrent_first_opens_share_one_store(tmp_path: Path, clock: FakeClock) -> None:
    pool = make_pool(tmp_path, clock, max_open=4)

    async def scenario() -> set[int]:
        async def grab() -> int:
            async with pool.acquire("newcomer") as store:
                await pool.run(store.append, "t", "1")
                return id(store)

        return set(await asyncio.gather(*(grab() for _ in range(50))))

    identities = asyncio.run(scenario())
    asyncio.run(pool.close())

    assert len(identities) == 1


def test_pool_close_checkpoints_every_store(tmp_path: Path, clock: FakeClock) -> None:
    pool = make_pool(tmp_path, clock, max_open=4)

    async def scenario() -> list[Path]:
        paths = []
        for sub in ["alice", "bob"]:
            async with pool.acquire(sub) as store:
                await pool.run(store.append, "t", "1")
                paths.append(store.path)
        await pool.close()
        return paths

    paths = asyncio.run(scenario())

    for path in paths:
        wal = path.with_name("events.db-wal")
        assert not wal.exists() or wal.stat().st_size == 0


def test_store_page_without_blocking_skips_busy_connection(tmp_path: Path, clock: FakeClock) -> None:
    store = open_store(tmp_path, clock)
    store.append("t", "1")

    with store._lock:
        skipped = store.page(None, 10, None, blocking=False)
    read = store.page(None, 10, None, blocking=False)
    store.close()

    assert skipped is None
    assert read is not None
    assert len(read) == 1


def test_pool_concurrent_new_users_stay_within_limit(tmp_path: Path, clock: FakeClock) -> None:
    pool = make_pool(tmp_path, clock, max_open=2)
    peak = 0

    async def write(user: str) -> None:
        nonlocal peak
        async with pool.acquire(user) as store:
            peak = max(peak, pool.open_count)
            await pool.run(store.append, "t", "1")

    async def scenario() -> None:
        await asyncio.gather(*(write(f"user{index}") for index in range(10)))

    asyncio.run(scenario())
    asyncio.run(pool.close())

    assert peak <= 2
