"""Helpers for fault and load tests: limited service processes, /proc probes, tokens, small file systems.

Everything here acts only on processes, files and mounts that the calling test created itself.
"""

from __future__ import annotations

import contextlib
import os
import resource
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx

from tests.fixtures.issuer import StubIssuer
from tests.servers import START_TIMEOUT, Service, _base_env, free_port

PreExec = Callable[[], None]


def start_api_process(
    data_dir: Path, auth_url: str, *, preexec_fn: PreExec | None = None, **extra: str
) -> Service:
    """Start the events API like `tests.servers.start_api`, running `preexec_fn` in the child before exec.

    `preexec_fn` is where a test lowers a resource limit of the API (Granian's workers inherit it).
    """
    port = free_port()
    env = _base_env(data_dir, {"BETTER_AUTH_URL": auth_url, "AUTH_SERVER_URL": auth_url, **extra})
    data_dir.mkdir(parents=True, exist_ok=True)
    log_path = data_dir / f"api-{port}.log"
    with log_path.open("ab") as log_file:
        process = subprocess.Popen(
            [sys.executable, "-m", "aibrain", "api", "--port", str(port), "--host", "127.0.0.1"],
            env=env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=preexec_fn,
        )
    service = Service("api", f"http://127.0.0.1:{port}", port, process, log_path, env)
    wait_until_ready(service, "/health")
    return service


def wait_until_ready(service: Service, path: str) -> None:
    """Poll `path` until the service sends any HTTP response, and raise with its log if it exits or times out."""
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if service.process.poll() is not None:
            raise RuntimeError(f"{service.name} exited with {service.process.returncode}:\n{service.log_text()}")
        try:
            httpx.get(service.url + path, timeout=1.0)
            return
        except httpx.TransportError:
            time.sleep(0.05)
    service.kill()
    raise RuntimeError(f"{service.name} did not answer within {START_TIMEOUT} s:\n{service.log_text()}")


def limit_open_files(count: int) -> PreExec:
    """Return a preexec_fn that sets both the soft and the hard RLIMIT_NOFILE to `count`."""

    def apply() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (count, count))

    return apply


def child_pids(pid: int) -> list[int]:
    """Return the PIDs of the direct children of `pid`, read from /proc/<pid>/task/*/children."""
    children: list[int] = []
    for task in os.listdir(f"/proc/{pid}/task"):
        with contextlib.suppress(FileNotFoundError):
            children += [int(child) for child in Path(f"/proc/{pid}/task/{task}/children").read_text().split()]
    return children


def worker_pid(service: Service) -> int:
    """Return the PID of the single Granian worker process of a service started with one worker."""
    children = child_pids(service.process.pid)
    if len(children) != 1:
        raise RuntimeError(f"expected one Granian worker under PID {service.process.pid}, found {children}")
    return children[0]


def open_fd_count(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def rss_bytes(pid: int) -> int:
    """Return the resident set size of a process in bytes (VmRSS of /proc/<pid>/status)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS line for PID {pid}")


def soft_open_file_limit(pid: int) -> int:
    """Return the soft 'Max open files' limit of a process, from /proc/<pid>/limits."""
    for line in Path(f"/proc/{pid}/limits").read_text().splitlines():
        if line.startswith("Max open files"):
            return int(line.split()[3])
    raise RuntimeError(f"no open-file limit for PID {pid}")


def user_token(issuer: StubIssuer, kid: str, sub: str, *, lifetime: int = 3600, **claims: Any) -> str:
    """Sign Better Auth-shaped claims for `sub` whose iss and aud are the stub issuer's origin."""
    now = int(time.time())
    body: dict[str, Any] = {
        "sub": sub,
        "id": sub,
        "email": f"{sub}@example.com",
        "name": sub,
        "emailVerified": True,
        "image": None,
        "iat": now,
        "exp": now + lifetime,
        "iss": issuer.url,
        "aud": issuer.url,
    }
    body.update(claims)
    return issuer.sign(body, kid)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def list_all_events(client: httpx.Client, base_url: str, token: str) -> list[dict[str, Any]]:
    """Return every event of a user by following next_cursor through pages of 500."""
    events: list[dict[str, Any]] = []
    params: dict[str, Any] = {"limit": 500}
    while True:
        response = client.get(base_url + "/events", params=params, headers=bearer(token))
        response.raise_for_status()
        page = response.json()
        events += page["events"]
        if page["next_cursor"] is None:
            return events
        params["cursor"] = page["next_cursor"]


def integrity_check(path: Path) -> list[str]:
    """Run PRAGMA integrity_check on a SQLite file read-only; ["ok"] means it passed."""
    connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return [row[0] for row in connection.execute("PRAGMA integrity_check").fetchall()]
    finally:
        connection.close()


@contextlib.contextmanager
def tmpfs_mount(path: Path, size: str) -> Iterator[Path]:
    """Mount a tmpfs of `size` (e.g. "4m") on `path` for the block; skip the test where mounting is refused."""
    import pytest

    path.mkdir(parents=True, exist_ok=True)
    result = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        pytest.skip(f"mounting a tmpfs needs CAP_SYS_ADMIN, which this run lacks: {result.stderr.strip()}")
    try:
        yield path
    finally:
        # A lazy unmount still succeeds if a failed test left a process holding files there.
        subprocess.run(["umount", "--lazy", str(path)], capture_output=True, check=False)


def set_immutable(paths: list[Path], on: bool) -> None:
    """Set or clear the immutable attribute (chattr +i / -i), which stops writes even by root."""
    subprocess.run(["chattr", "+i" if on else "-i", *map(str, paths)], capture_output=True, check=True)


def immutable_supported(probe_dir: Path) -> bool:
    """Return whether chattr +i works on files under `probe_dir` (ext4 and xfs support it; tmpfs may not)."""
    probe = probe_dir / ".immutable-probe"
    probe.write_bytes(b"")
    try:
        result = subprocess.run(["chattr", "+i", str(probe)], capture_output=True, check=False)
        if result.returncode != 0:
            return False
        subprocess.run(["chattr", "-i", str(probe)], capture_output=True, check=True)
        return True
    finally:
        probe.unlink()


def fill_file_system(path: Path, chunk_bytes: int = 65_536) -> int:
    """Write zeros to `path` until the file system is full (ENOSPC); return the bytes written."""
    written = 0
    chunk = b"\0" * chunk_bytes
    with path.open("wb", buffering=0) as filler:
        while True:
            try:
                written += filler.write(chunk)
            except OSError as exc:
                if exc.errno != 28:  # ENOSPC
                    raise
                # Try smaller writes so that the last few free blocks get used too.
                if len(chunk) == 1:
                    return written
                chunk = chunk[: len(chunk) // 2]
