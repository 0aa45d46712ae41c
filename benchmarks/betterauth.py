"""Better Auth as a peer: the interop test server (email/password, jwt and bearer plugins) on RS256."""

from __future__ import annotations

import json
import secrets
import subprocess
from pathlib import Path

import httpx

from benchmarks.procs import Server, free_port, read_json_line, start_server

INTEROP_DIR = Path(__file__).resolve().parent.parent / "tests" / "interop"
SERVER_SCRIPT = INTEROP_DIR / "server.mjs"


def available() -> bool:
    return SERVER_SCRIPT.exists() and (INTEROP_DIR / "node_modules" / "better-auth").is_dir()


def version() -> str:
    package = INTEROP_DIR / "node_modules" / "better-auth" / "package.json"
    return str(json.loads(package.read_text())["version"])


def node_version() -> str:
    return subprocess.run(["node", "--version"], capture_output=True, text=True, check=True).stdout.strip()


def start(work_dir: Path) -> Server:
    """Start Better Auth with RS256 keys, a fresh SQLite file and rate limiting off, as aibrain runs here."""
    port = free_port()
    log_path = work_dir / "better-auth.log"
    env_shown = {
        "INTEROP_PORT": str(port),
        "INTEROP_JWT_ALG": "RS256",
        "INTEROP_RATE_LIMIT": "false",
        "INTEROP_DB": "<tmp>/better-auth.db",
    }
    env = {
        **env_shown,
        "INTEROP_DB": str(work_dir / "better-auth.db"),
        "BETTER_AUTH_SECRET": secrets.token_urlsafe(32),
    }

    def ready() -> bool:
        if read_json_line(log_path, "ready") is None:
            return False
        return httpx.get(f"http://127.0.0.1:{port}/api/auth/ok", timeout=1).status_code == 200

    return start_server(
        "better-auth", ["node", str(SERVER_SCRIPT)], port, work_dir, ready, env=env, env_shown=env_shown
    )
