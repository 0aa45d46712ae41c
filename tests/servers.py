"""Start aibrain's services as real processes on free loopback ports, for end-to-end tests.

Each service runs exactly as a user starts it (`python -m aibrain auth|api`, Granian, uvloop), with its
own data folder, and is stopped by PID at teardown.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

TEST_SECRET = "test-secret-0123456789-abcdefghijklmnop"
START_TIMEOUT = 30.0


def free_port() -> int:
    """Return a loopback port that was free a moment ago (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Service:
    """A running service process; `url` is its base URL, `log_path` its combined stdout and stderr."""

    name: str
    url: str
    port: int
    process: subprocess.Popen[bytes]
    log_path: Path
    env: dict[str, str] = field(repr=False)

    def log_text(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def stop(self, sig: signal.Signals = signal.SIGTERM, timeout: float = 20.0) -> int:
        """Send `sig` (SIGTERM by default) and wait; return the exit code."""
        if self.process.poll() is None:
            self.process.send_signal(sig)
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait()

    def kill(self) -> None:
        """Kill the process group with SIGKILL, as a crash would (Granian's worker included)."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()


def _start(name: str, data_dir: Path, port: int, env: dict[str, str], ready_path: str) -> Service:
    data_dir.mkdir(parents=True, exist_ok=True)
    log_path = data_dir / f"{name}-{port}.log"
    handle = log_path.open("ab")
    process = subprocess.Popen(
        [sys.executable, "-m", "aibrain", name, "--port", str(port), "--host", "127.0.0.1"],
        env=env,
        stdout=handle,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    handle.close()
    service = Service(name, f"http://127.0.0.1:{port}", port, process, log_path, env)
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{name} exited with {process.returncode} at start:\n{service.log_text()}")
        try:
            httpx.get(service.url + ready_path, timeout=1.0)
            return service
        except httpx.TransportError:
            time.sleep(0.05)
    service.kill()
    raise RuntimeError(f"{name} did not answer within {START_TIMEOUT} s:\n{service.log_text()}")


def _base_env(data_dir: Path, extra: dict[str, str]) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith(("AIBRAIN_", "BETTER_AUTH_", "AUTH_"))}
    env.update(
        {
            "AIBRAIN_DATA_DIR": str(data_dir),
            "BETTER_AUTH_SECRET": TEST_SECRET,
            "AIBRAIN_LOG_LEVEL": "INFO",
            "AIBRAIN_RATE_LIMIT_ENABLED": "false",
        }
    )
    env.update(extra)
    return env


def start_auth(data_dir: Path, port: int | None = None, **extra: str) -> Service:
    """Start the auth service; BETTER_AUTH_URL defaults to its own address, as iss and aud."""
    port = port or free_port()
    env = _base_env(data_dir, {"BETTER_AUTH_URL": f"http://127.0.0.1:{port}", **extra})
    return _start("auth", data_dir, port, env, "/api/auth/ok")


def start_api(data_dir: Path, auth_url: str, port: int | None = None, **extra: str) -> Service:
    """Start the events API trusting the auth server at `auth_url` (JWKS, issuer and audience)."""
    port = port or free_port()
    env = _base_env(data_dir, {"BETTER_AUTH_URL": auth_url, "AUTH_SERVER_URL": auth_url, **extra})
    return _start("api", data_dir, port, env, "/health")
