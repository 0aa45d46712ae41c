"""Start and stop a real Better Auth server (server.mjs) and run Better Auth's own client (client.mjs).

Both scripts live next to this file and need `npm ci` to have run here; `make test` does that.
"""

from __future__ import annotations

import json
import os
import secrets
import selectors
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

NODE_DIR = Path(__file__).resolve().parent
SERVER_SCRIPT = NODE_DIR / "server.mjs"
CLIENT_SCRIPT = NODE_DIR / "client.mjs"

# One secret per test run, shared by every server the suite starts: a database can then move from
# one server to the other, because session cookies are signed and JWKS private keys are encrypted
# with it.
SECRET = secrets.token_urlsafe(36)

START_TIMEOUT_SECONDS = 30.0
STOP_TIMEOUT_SECONDS = 10.0
CLIENT_TIMEOUT_SECONDS = 60.0


def node_binary() -> str:
    """Return the path of `node`, failing the test when Node is not installed."""
    found = shutil.which("node") or ("/usr/bin/node" if Path("/usr/bin/node").exists() else None)
    if found is None:
        pytest.fail("node is not installed; the interop tests need Node 20 or newer on PATH")
    return found


def require_node_modules() -> None:
    """Fail (never skip) when the npm packages of tests/interop are not installed."""
    if not (NODE_DIR / "node_modules" / "better-auth" / "package.json").is_file():
        pytest.fail(
            f"{NODE_DIR / 'node_modules'} is missing: run `make test`, which runs "
            "`npm ci` in tests/interop before pytest"
        )


@dataclass
class BetterAuthServer:
    """A running server.mjs process on 127.0.0.1."""

    process: subprocess.Popen[str]
    port: int
    db_path: Path
    log_path: Path
    migrations: dict = field(default_factory=dict)

    @property
    def url(self) -> str:
        """Origin of the server, which is also its JWT issuer and audience."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def auth_url(self) -> str:
        """Base URL of the Better Auth routes."""
        return f"{self.url}/api/auth"

    def log(self) -> str:
        """Return what the server wrote to stderr so far."""
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        """Stop the process by its PID: SIGTERM, then SIGKILL if it has not exited in time."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=STOP_TIMEOUT_SECONDS)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=STOP_TIMEOUT_SECONDS)
        if self.process.stdout is not None:
            self.process.stdout.close()


def _read_ready_line(process: subprocess.Popen[str], log_path: Path) -> dict:
    """Wait for server.mjs to print its JSON ready line and return it parsed."""
    assert process.stdout is not None
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            if selector.select(timeout=remaining):
                line = process.stdout.readline()
                if line == "":
                    break
                message = json.loads(line)
                if message.get("ready") is True:
                    return message
    process.kill()
    process.wait(timeout=STOP_TIMEOUT_SECONDS)
    process.stdout.close()
    pytest.fail(
        f"Better Auth server did not report ready within {START_TIMEOUT_SECONDS} s "
        f"(exit code {process.returncode}); its stderr:\n{log_path.read_text(errors='replace')}"
    )


def start_better_auth(
    db_path: Path,
    *,
    alg: str = "EdDSA",
    rotation_interval: float | None = None,
    grace_period: float | None = None,
    rate_limit: bool = False,
    secret: str = SECRET,
) -> BetterAuthServer:
    """Start server.mjs on a free port with the SQLite file `db_path` and wait until it listens.

    The caller must call `.stop()`; the fixtures in conftest.py do.
    """
    require_node_modules()
    log_path = db_path.with_name(db_path.name + ".server.log")
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": os.environ.get("HOME", "/tmp"),
        "BETTER_AUTH_SECRET": secret,
        "BETTER_AUTH_TELEMETRY": "0",
        "INTEROP_DB": str(db_path),
        "INTEROP_PORT": "0",
        "INTEROP_JWT_ALG": alg,
        "INTEROP_RATE_LIMIT": "true" if rate_limit else "false",
    }
    if rotation_interval is not None:
        env["INTEROP_ROTATION_INTERVAL"] = str(rotation_interval)
    if grace_period is not None:
        env["INTEROP_GRACE_PERIOD"] = str(grace_period)
    with log_path.open("a") as log_file:
        process = subprocess.Popen(
            [node_binary(), str(SERVER_SCRIPT)],
            cwd=NODE_DIR,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=log_file,
            text=True,
        )
    ready = _read_ready_line(process, log_path)
    return BetterAuthServer(
        process=process,
        port=ready["port"],
        db_path=db_path,
        log_path=log_path,
        migrations=ready["migrations"],
    )


def run_client(origin: str, email: str, password: str = "correct horse battery") -> dict:
    """Run client.mjs (Better Auth's createAuthClient) against `origin` and return its summary."""
    require_node_modules()
    completed = subprocess.run(
        [node_binary(), str(CLIENT_SCRIPT), origin, email, password],
        cwd=NODE_DIR,
        capture_output=True,
        text=True,
        timeout=CLIENT_TIMEOUT_SECONDS,
        check=False,
    )
    if completed.returncode != 0:
        pytest.fail(f"client.mjs exited with {completed.returncode}; stderr:\n{completed.stderr}")
    return json.loads(completed.stdout)
