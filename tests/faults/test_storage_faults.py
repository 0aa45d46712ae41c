"""Full and read-only disks under the events API, as real processes.

A full disk is a small tmpfs mounted on `<data dir>/users` and filled by a filler file. A
read-only store uses the immutable attribute (`chattr +i`), because the tests run as root and root
ignores permission bits. Each scenario runs once per module and records what the API returned at
each step, and the tests check one property each.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.faults.conftest import KID
from tests.faults.support import (
    bearer,
    fill_file_system,
    immutable_supported,
    integrity_check,
    set_immutable,
    tmpfs_mount,
    user_token,
)
from tests.fixtures.issuer import StubIssuer
from tests.servers import start_api

TMPFS_SIZE = "4m"
LARGE_DATA = "x" * 256_000
FULL_DISK_ATTEMPTS = 3


@dataclass
class Step:
    status: int
    body: Any


def _step(response: httpx.Response) -> Step:
    try:
        body = response.json()
    except ValueError:
        body = response.text
    return Step(response.status_code, body)


@dataclass
class FullDisk:
    stored_before: list[dict[str, Any]]
    full_writes: list[Step]
    read_while_full: Step
    write_after_free: Step
    listed_at_end: list[dict[str, Any]]
    integrity: list[str]
    log: str
    store_path: Path
    acknowledged: list[dict[str, Any]] = field(default_factory=list)


@pytest.fixture(scope="module")
def full_disk(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FullDisk]:
    """Fill the users' file system, write and read while it is full, free the space, and write again."""
    data_dir = tmp_path_factory.mktemp("full-disk")
    users_dir = data_dir / "users"
    with StubIssuer() as issuer, tmpfs_mount(users_dir, TMPFS_SIZE):
        issuer.add_key("RS256", KID)
        token = user_token(issuer, KID, "full-user")
        store_path = users_dir / "full-user" / "events.db"
        api = start_api(data_dir, issuer.url)
        try:
            with httpx.Client(base_url=api.url, headers=bearer(token), timeout=30.0) as client:
                stored_before = [client.post("/events", json={"type": "before", "data": n}).json() for n in range(5)]

                filler = users_dir / "filler.bin"
                fill_file_system(filler)
                full_writes = [
                    _step(client.post("/events", json={"type": "large", "data": LARGE_DATA}))
                    for _ in range(FULL_DISK_ATTEMPTS)
                ]
                read_while_full = _step(client.get("/events", params={"limit": 500}))

                filler.unlink()
                write_after_free = _step(client.post("/events", json={"type": "large", "data": LARGE_DATA}))
                listed_at_end = client.get("/events", params={"limit": 500}).json()["events"]
        finally:
            api.stop()
        # Checked after the stop, so that the API's final checkpoint has run too.
        integrity = integrity_check(store_path)

    acknowledged = list(stored_before)
    if write_after_free.status == 201:
        acknowledged.append(write_after_free.body)
    yield FullDisk(
        stored_before=stored_before,
        full_writes=full_writes,
        read_while_full=read_while_full,
        write_after_free=write_after_free,
        listed_at_end=listed_at_end,
        integrity=integrity,
        log=api.log_text(),
        store_path=store_path,
        acknowledged=acknowledged,
    )


def test_full_disk_write_returns_507(full_disk: FullDisk) -> None:
    assert [step.status for step in full_disk.full_writes] == [507] * FULL_DISK_ATTEMPTS


def test_full_disk_write_error_has_code(full_disk: FullDisk) -> None:
    assert [step.body.get("code") for step in full_disk.full_writes] == ["STORAGE_FULL"] * FULL_DISK_ATTEMPTS


def test_full_disk_write_error_has_message(full_disk: FullDisk) -> None:
    assert all(step.body.get("message") for step in full_disk.full_writes)


def test_full_disk_reads_keep_working(full_disk: FullDisk) -> None:
    assert full_disk.read_while_full.status == 200


def test_full_disk_read_lists_only_stored_events(full_disk: FullDisk) -> None:
    # Newest first, and none of the rejected large events half-written in between.
    assert full_disk.read_while_full.body["events"] == full_disk.stored_before[::-1]


def test_full_disk_log_names_store_file(full_disk: FullDisk) -> None:
    assert f"event store {full_disk.store_path} could not store events" in full_disk.log


def test_full_disk_write_works_after_space_freed(full_disk: FullDisk) -> None:
    assert full_disk.write_after_free.status == 201


def test_full_disk_keeps_exactly_acknowledged_events(full_disk: FullDisk) -> None:
    assert full_disk.listed_at_end == full_disk.acknowledged[::-1]


def test_full_disk_store_passes_integrity_check(full_disk: FullDisk) -> None:
    assert full_disk.integrity == ["ok"]


@dataclass
class ReadOnlyStore:
    kind: str
    stored: list[dict[str, Any]]
    read_while_read_only: Step
    write_while_read_only: Step
    write_after_writable: Step
    listed_at_end: Step
    integrity: list[str]
    log: str
    store_path: Path


@pytest.fixture(scope="module", params=["directory-and-file", "file-only"])
def read_only_store(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ReadOnlyStore]:
    """Make a user's store read-only between two runs of the API, use it, then make it writable again.

    "directory-and-file" sets the immutable attribute on the user's directory and events.db, so
    SQLite cannot create its -wal and -shm files there. "file-only" sets it on events.db alone.
    """
    kind: str = request.param
    data_dir = tmp_path_factory.mktemp(f"read-only-{kind}")
    if not immutable_supported(data_dir):
        pytest.skip(f"chattr +i is not supported on the file system of {data_dir}")

    with StubIssuer() as issuer:
        issuer.add_key("RS256", KID)
        token = user_token(issuer, KID, "ro-user")
        user_dir = data_dir / "users" / "ro-user"
        store_path = user_dir / "events.db"

        api = start_api(data_dir, issuer.url)
        with httpx.Client(base_url=api.url, headers=bearer(token), timeout=30.0) as client:
            stored = [client.post("/events", json={"type": "kept", "data": n}).json() for n in range(3)]
        # A clean stop checkpoints the WAL and removes it, so events.db alone contains every event.
        api.stop()

        locked = [user_dir, store_path] if kind == "directory-and-file" else [store_path]
        set_immutable(locked, on=True)
        try:
            api = start_api(data_dir, issuer.url)
            try:
                with httpx.Client(base_url=api.url, headers=bearer(token), timeout=30.0) as client:
                    read_while_read_only = _step(client.get("/events"))
                    write_while_read_only = _step(client.post("/events", json={"type": "rejected", "data": 0}))
                    set_immutable(locked, on=False)
                    write_after_writable = _step(client.post("/events", json={"type": "later", "data": 1}))
                    listed_at_end = _step(client.get("/events"))
            finally:
                api.stop()
        finally:
            set_immutable(locked, on=False)
        integrity = integrity_check(store_path)

    yield ReadOnlyStore(
        kind=kind,
        stored=stored,
        read_while_read_only=read_while_read_only,
        write_while_read_only=write_while_read_only,
        write_after_writable=write_after_writable,
        listed_at_end=listed_at_end,
        integrity=integrity,
        log=api.log_text(),
        store_path=store_path,
    )


def test_read_only_store_reads_keep_working(read_only_store: ReadOnlyStore) -> None:
    assert read_only_store.read_while_read_only.status == 200


def test_read_only_store_write_returns_503(read_only_store: ReadOnlyStore) -> None:
    assert read_only_store.write_while_read_only.status == 503


def test_read_only_store_write_error_has_code(read_only_store: ReadOnlyStore) -> None:
    assert read_only_store.write_while_read_only.body.get("code") == "STORAGE_UNAVAILABLE"


def test_read_only_store_log_names_store_file(read_only_store: ReadOnlyStore) -> None:
    assert f"event store {read_only_store.store_path} could not store events" in read_only_store.log


def test_read_only_store_writable_again_accepts_writes(read_only_store: ReadOnlyStore) -> None:
    assert read_only_store.write_after_writable.status == 201


def test_read_only_store_keeps_stored_events(read_only_store: ReadOnlyStore) -> None:
    listed_ids = [event["id"] for event in read_only_store.listed_at_end.body["events"]]
    assert [event["id"] for event in read_only_store.stored if event["id"] not in listed_ids] == []


def test_read_only_store_passes_integrity_check(read_only_store: ReadOnlyStore) -> None:
    assert read_only_store.integrity == ["ok"]
