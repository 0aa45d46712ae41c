"""Many users against an API limited to 1,024 open files: every request must succeed, descriptors stay bounded.

Each user's store costs up to three descriptors while open (events.db, -wal, -shm), so 1,500 users
would need about 4,500 without the LRU of open stores. The scenario runs once per module.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.faults.support import (
    bearer,
    limit_open_files,
    open_fd_count,
    soft_open_file_limit,
    start_api_process,
    user_token,
    worker_pid,
)
from tests.fixtures.issuer import StubIssuer

USERS = 1_500
# Concurrent keep-alive clients: a light load, and one where, without the pool's descriptor cap,
# the open stores and sockets would need more than 1,024 descriptors (3 x (256 + 128) + 128).
CLIENT_THREADS = (16, 128)
OPEN_FILE_LIMIT = 1_024
# The default of AIBRAIN_STORE_CACHE_SIZE, which this test leaves unset.
DEFAULT_STORE_CACHE_SIZE = 1024
FDS_PER_STORE = 3
# Descriptors beyond the stores, client sockets and the idle baseline: listener, pipes, log and so on.
FD_MARGIN = 32
SAMPLE_INTERVAL_SECONDS = 0.05


@dataclass
class ManyUsers:
    clients: int
    open_file_limit: int
    baseline_fds: int
    max_fds: int
    samples: int
    failures: list[str]
    completed_users: int
    stores_open: int
    user_dirs: int


def _serve_users(api_url: str, tokens: list[tuple[str, str]], failures: list[str], done: list[int], lock: threading.Lock) -> None:
    with httpx.Client(base_url=api_url, timeout=60.0) as client:
        for sub, token in tokens:
            try:
                failure = _serve_one_user(client, sub, token)
            except httpx.HTTPError as exc:
                failure = f"{sub}: {type(exc).__name__}: {exc}"
            with lock:
                if failure is None:
                    done[0] += 1
                else:
                    failures.append(failure)


def _serve_one_user(client: httpx.Client, sub: str, token: str) -> str | None:
    """Write one event and read it back; return a description of the failure, or None."""
    headers = bearer(token)
    created = client.post("/events", headers=headers, json={"type": "hello", "data": {"user": sub}})
    if created.status_code != 201:
        return f"{sub} POST: {created.status_code} {created.text[:200]}"
    listed = client.get("/events", headers=headers)
    if listed.status_code != 200 or listed.json()["events"] != [created.json()]:
        return f"{sub} GET: {listed.status_code} {listed.text[:200]}"
    return None


@pytest.fixture(scope="module", params=CLIENT_THREADS, ids=lambda clients: f"{clients}-clients")
def many_users(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ManyUsers]:
    """Run 1,500 users, each writing one event and reading it back, through keep-alive client threads."""
    clients: int = request.param
    data_dir = tmp_path_factory.mktemp(f"many-users-{clients}")
    with StubIssuer() as issuer:
        # Ed25519 signing is far cheaper than RSA-2048 signing, so 1,500 tokens cost the test little.
        kid = issuer.add_key("EdDSA", "ed-many-users")
        tokens = [(f"user-{number:04d}", user_token(issuer, kid, f"user-{number:04d}")) for number in range(USERS)]
        api = start_api_process(data_dir, issuer.url, preexec_fn=limit_open_files(OPEN_FILE_LIMIT))
        try:
            worker = worker_pid(api)
            baseline_fds = open_fd_count(worker)
            failures: list[str] = []
            done = [0]
            lock = threading.Lock()
            threads = [
                threading.Thread(target=_serve_users, args=(api.url, tokens[index::clients], failures, done, lock))
                for index in range(clients)
            ]
            for thread in threads:
                thread.start()

            max_fds, samples = baseline_fds, 0
            stop_sampling = threading.Event()
            while any(thread.is_alive() for thread in threads):
                max_fds = max(max_fds, open_fd_count(worker))
                samples += 1
                stop_sampling.wait(SAMPLE_INTERVAL_SECONDS)
            for thread in threads:
                thread.join()

            stores_open = httpx.get(api.url + "/health").json()["stores"]["open"]
            open_file_limit = soft_open_file_limit(worker)
        finally:
            api.stop()

    print(
        f"\nmany users, {clients} clients: {done[0]} of {USERS} users done, {len(failures)} failures, "
        f"descriptors {baseline_fds} at start and {max_fds} at most ({samples} samples)"
    )
    user_dirs = sum(1 for path in Path(data_dir / "users").iterdir() if path.is_dir())
    yield ManyUsers(
        clients=clients,
        open_file_limit=open_file_limit,
        baseline_fds=baseline_fds,
        max_fds=max_fds,
        samples=samples,
        failures=failures,
        completed_users=done[0],
        stores_open=stores_open,
        user_dirs=user_dirs,
    )


def test_many_users_limit_applies_to_worker(many_users: ManyUsers) -> None:
    assert many_users.open_file_limit == OPEN_FILE_LIMIT


def test_many_users_requests_all_succeed(many_users: ManyUsers) -> None:
    assert many_users.failures == []


def test_many_users_every_user_completes(many_users: ManyUsers) -> None:
    assert many_users.completed_users == USERS


def test_many_users_every_user_has_a_store(many_users: ManyUsers) -> None:
    assert many_users.user_dirs == USERS


def test_many_users_descriptors_stay_bounded(many_users: ManyUsers) -> None:
    # The pool counts stores in use toward its limit, which it lowers to fit half the open-file limit.
    stores = min(DEFAULT_STORE_CACHE_SIZE, OPEN_FILE_LIMIT // 2 // FDS_PER_STORE)
    bound = many_users.baseline_fds + FDS_PER_STORE * stores + many_users.clients + FD_MARGIN
    assert many_users.max_fds <= bound


def test_many_users_descriptors_stay_under_limit(many_users: ManyUsers) -> None:
    assert many_users.max_fds < OPEN_FILE_LIMIT


def test_many_users_descriptors_were_sampled(many_users: ManyUsers) -> None:
    # Without samples taken during the load, the bound above would prove nothing.
    assert many_users.samples >= 10


def test_many_users_open_stores_within_cache_size(many_users: ManyUsers) -> None:
    assert many_users.stores_open <= OPEN_FILE_LIMIT // 2 // FDS_PER_STORE
