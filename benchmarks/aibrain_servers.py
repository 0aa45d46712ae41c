"""Start aibrain's services the way a user does: `aibrain serve`, or `aibrain api` alone."""

from __future__ import annotations

import os
import secrets
import sys
from pathlib import Path

import httpx

from benchmarks.procs import Server, free_port, start_server

CLI = Path(sys.executable).with_name("aibrain")


def worker_note() -> str:
    """Describe the worker processes and threads that the default settings give each service."""
    from aibrain.settings import Settings

    fields = Settings.model_fields
    return (
        f"{fields['auth_workers'].default} auth worker process, {fields['api_workers'].default} API worker process, "
        f"password hashing on {os.cpu_count()} threads (one per core), up to "
        f"{fields['store_cache_size'].default} per-user stores open"
    )


def _get_ok(url: str) -> bool:
    return httpx.get(url, timeout=1).status_code == 200


def start_serve(work_dir: Path, *, rate_limit: bool) -> tuple[Server, str, str]:
    """Run `aibrain serve` with default settings on free ports; return it and the auth and API URLs."""
    work_dir.mkdir(parents=True, exist_ok=True)
    auth_port, api_port = free_port(), free_port()
    auth_url, api_url = f"http://127.0.0.1:{auth_port}", f"http://127.0.0.1:{api_port}"
    env_shown = {
        "AIBRAIN_AUTH_PORT": str(auth_port),
        "AIBRAIN_API_PORT": str(api_port),
        "BETTER_AUTH_URL": auth_url,
        "AIBRAIN_DATA_DIR": "<tmp>/aibrain-data",
        "AIBRAIN_RATE_LIMIT_ENABLED": "true" if rate_limit else "false",
    }
    env = {
        **env_shown,
        "AIBRAIN_DATA_DIR": str(work_dir / "aibrain-data"),
        "BETTER_AUTH_SECRET": secrets.token_urlsafe(32),
    }

    # The API's /ready can stay 503 here because both services start at once and the API's first
    # JWKS fetch may miss the auth service. The API fetches the keys again on its first token.
    def ready() -> bool:
        return _get_ok(f"{auth_url}/api/auth/jwks") and _get_ok(f"{api_url}/health")

    # cwd is the temp dir so that a developer's .env in the repository does not change the settings.
    server = start_server(
        "aibrain-serve", [str(CLI), "serve"], api_port, work_dir, ready, env=env, env_shown=env_shown, cwd=work_dir
    )
    return server, auth_url, api_url


def start_api(work_dir: Path, *, jwks_base_url: str, issuer: str, name: str) -> Server:
    """Run `aibrain api` alone, trusting the JWKS served at `jwks_base_url` and tokens issued by `issuer`."""
    port = free_port()
    data_dir = work_dir / f"{name}-data"
    env_shown = {
        "AIBRAIN_API_PORT": str(port),
        "AUTH_SERVER_URL": "<stub JWKS URL>",
        "BETTER_AUTH_URL": "<stub JWKS URL>",
        "AIBRAIN_JWT_ISSUER": issuer,
        "AIBRAIN_JWT_AUDIENCE": issuer,
        "AIBRAIN_DATA_DIR": f"<tmp>/{name}-data",
    }
    env = {
        **env_shown,
        "AUTH_SERVER_URL": jwks_base_url,
        "BETTER_AUTH_URL": jwks_base_url,
        "AIBRAIN_DATA_DIR": str(data_dir),
        "BETTER_AUTH_SECRET": secrets.token_urlsafe(32),
    }
    return start_server(
        name,
        [str(CLI), "api"],
        port,
        work_dir,
        lambda: _get_ok(f"http://127.0.0.1:{port}/ready"),
        env=env,
        env_shown=env_shown,
        cwd=work_dir,
    )


def user_dirs(data_dir: Path) -> int:
    """Count the per-user folders the API created under a data dir."""
    users = data_dir / "users"
    return sum(1 for _ in users.iterdir()) if users.is_dir() else 0
