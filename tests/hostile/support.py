"""Helpers for the hostile-input suite: claims, error-body checks, raw HTTP and process inspection."""

from __future__ import annotations

import base64
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx
import hypothesis

from tests.fixtures.issuer import StubIssuer
from tests.servers import TEST_SECRET, Service, free_port

# How long a test waits for a background event (a JWKS refresh, a log line) before it fails.
EVENT_TIMEOUT = 15.0
SOCKET_TIMEOUT = 10.0


def claims(issuer: StubIssuer, user: str = "alice", **overrides: Any) -> dict[str, Any]:
    """Return Better Auth-shaped claims for `user`, issued by the stub now and valid for 900 s.

    Each keyword replaces one claim; the value `...` removes it.
    """
    now = int(time.time())
    values: dict[str, Any] = {
        "iat": now,
        "name": user.title(),
        "email": f"{user}@example.com",
        "emailVerified": True,
        "image": None,
        "id": user,
        "sub": user,
        "exp": now + 900,
        "iss": issuer.url,
        "aud": issuer.url,
    }
    values.update(overrides)
    return {name: value for name, value in values.items() if value is not ...}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def assert_json_error(response: httpx.Response, status: int, code: str | None = None) -> dict[str, Any]:
    """Check an error response: the status, a JSON `{"message", "code"}` body and, if given, the code."""
    assert response.status_code == status, response.text
    assert response.headers.get("content-type", "").startswith("application/json"), response.headers
    body = response.json()
    assert isinstance(body, dict), body
    assert set(body) == {"message", "code"}, body
    assert isinstance(body["message"], str) and body["message"], body
    assert "Traceback" not in body["message"], body
    if code is not None:
        assert body["code"] == code, body
    return body


def assert_unauthorized(response: httpx.Response, code: str | None = None) -> dict[str, Any]:
    """Check a 401 response: JSON error body and a Bearer challenge in WWW-Authenticate."""
    body = assert_json_error(response, 401, code)
    assert response.headers.get("www-authenticate", "").startswith("Bearer"), response.headers
    return body


def user_entries(data_dir: Path) -> list[str]:
    """Return the names under `<data dir>/users`, or an empty list when the folder does not exist."""
    users = data_dir / "users"
    return sorted(os.listdir(users)) if users.exists() else []


def file_tree(root: Path) -> set[str]:
    """Return every path under `root`, relative to it, skipping service log files."""
    return {
        str(path.relative_to(root)) for path in root.rglob("*") if not path.name.endswith(".log")
    }


def wait_for(condition: Any, message: str, timeout: float = EVENT_TIMEOUT) -> Any:
    """Poll `condition()` until it returns a true value and return that value; fail after `timeout` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {message}")
        time.sleep(0.05)


def jwks_stats(api: Service) -> dict[str, Any]:
    """Return the JWKS cache counters that `GET /health` reports."""
    return httpx.get(api.url + "/health", timeout=SOCKET_TIMEOUT).json()["jwks"]  # type: ignore[no-any-return]


def raw_request(port: int, request: bytes, *, body_chunks: Sequence[bytes] = (), timeout: float = SOCKET_TIMEOUT) -> bytes:
    """Send raw bytes over one connection, then read the response until the server closes or stalls.

    Errors while sending the optional body chunks are ignored, because a server may respond and
    close before the client has sent everything. The response read afterwards is what counts.
    """
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as connection:
        connection.sendall(request)
        try:
            for chunk in body_chunks:
                connection.sendall(chunk)
        except OSError:
            pass
        received = bytearray()
        try:
            while b"\r\n\r\n" not in received or not _complete(received):
                data = connection.recv(65536)
                if not data:
                    break
                received += data
        except (TimeoutError, ConnectionResetError):
            pass
        return bytes(received)


def _complete(received: bytearray) -> bool:
    head, _, body = bytes(received).partition(b"\r\n\r\n")
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return len(body) >= int(value.strip())
    return False


def pipelined_posts(
    port: int, path: str, token: str, bodies: Sequence[bytes], batch: int = 100, after_batch: Any = None
) -> list[int]:
    """POST JSON bodies over one keep-alive connection, `batch` requests in flight; return the statuses.

    `after_batch`, when given, is called after the responses of each batch have arrived.

    Pipelining keeps the client's CPU cost near zero, so a burst of thousands of requests measures
    the server rather than the HTTP client library.
    """
    statuses: list[int] = []
    with socket.create_connection(("127.0.0.1", port), timeout=SOCKET_TIMEOUT) as connection:
        reader = connection.makefile("rb")
        for start in range(0, len(bodies), batch):
            chunk = bodies[start : start + batch]
            connection.sendall(
                b"".join(
                    b"POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer %s\r\n"
                    b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
                    % (path.encode(), token.encode(), len(body), body)
                    for body in chunk
                )
            )
            for _ in chunk:
                statuses.append(_read_response(reader))
            if after_batch is not None:
                after_batch()
    return statuses


def _read_response(reader: Any) -> int:
    status = int(reader.readline().split(b" ")[1])
    length = 0
    while (line := reader.readline()) not in (b"\r\n", b""):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    reader.read(length)
    return status


def parse_raw_response(raw: bytes) -> tuple[int, dict[str, str], bytes]:
    """Split a raw HTTP/1.1 response into status, lower-cased headers and body."""
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ")[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return status, headers, body


def worker_pid(service: Service) -> int:
    """Return the PID of the Granian worker process that runs the app (the main process's child)."""
    children_file = Path(f"/proc/{service.process.pid}/task/{service.process.pid}/children")
    children = wait_for(lambda: children_file.read_text().split(), "the Granian worker process")
    return int(children[0])


def peak_memory_kib(pid: int) -> int:
    """Return the peak resident set size (VmHWM) of a process in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError(f"no VmHWM in /proc/{pid}/status")


def cpu_seconds(pid: int) -> float:
    """Return the user plus system CPU time a process has used so far, in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    # utime and stime are fields 14 and 15 of the whole line, 12 and 13 after the command name.
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def launch_without_probe(name: str, data_dir: Path, extra_env: dict[str, str]) -> Service:
    """Start a service like tests.servers does, but wait only for its port, sending no request.

    Granian binds the port before the app starts, so the first HTTP request a test sends is the
    first one the app ever receives.
    """
    port = free_port()
    data_dir.mkdir(parents=True, exist_ok=True)
    env = {key: value for key, value in os.environ.items() if not key.startswith(("AIBRAIN_", "BETTER_AUTH_", "AUTH_"))}
    env.update(
        {
            "AIBRAIN_DATA_DIR": str(data_dir),
            "BETTER_AUTH_SECRET": TEST_SECRET,
            "BETTER_AUTH_URL": f"http://127.0.0.1:{port}",
            "AIBRAIN_LOG_LEVEL": "INFO",
            "AIBRAIN_RATE_LIMIT_ENABLED": "false",
            **extra_env,
        }
    )
    log_path = data_dir / f"{name}-{port}.log"
    with log_path.open("ab") as handle:
        process = subprocess.Popen(
            [sys.executable, "-m", "aibrain", name, "--port", str(port), "--host", "127.0.0.1"],
            env=env,
            stdout=handle,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    service = Service(name, f"http://127.0.0.1:{port}", port, process, log_path, env)

    def port_open() -> bool:
        if process.poll() is not None:
            raise AssertionError(f"{name} exited at start:\n{service.log_text()}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1.0).close()
            return True
        except OSError:
            return False

    try:
        wait_for(port_open, f"{name} to listen on port {port}", timeout=30.0)
    except AssertionError:
        service.kill()
        raise
    return service


def decode_segment(segment: str) -> Any:
    """Decode one base64url JWT segment as JSON."""
    return json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))


def fuzz_settings(max_examples: int) -> hypothesis.settings:
    """Return the hypothesis settings of the OpenAPI fuzz tests.

    The examples are the same on every run (derandomize), so a fuzz failure reproduces and CI
    cannot fail on luck; nothing is stored between runs, and slow servers trip no health check.
    """
    return hypothesis.settings(
        max_examples=max_examples,
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=list(hypothesis.HealthCheck),
    )
