"""Fixtures that run a real Better Auth 1.7 server from tests/interop/node_modules.

Nothing here skips: without node_modules the fixtures fail with a message to run `make test`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.servers import Service, start_api, start_auth

from .better_auth_process import SECRET, BetterAuthServer, require_node_modules, start_better_auth

JWT_ALGORITHMS = ["RS256", "EdDSA"]


@pytest.fixture(scope="session", autouse=True)
def _node_modules_installed() -> None:
    require_node_modules()


@pytest.fixture(scope="module", params=JWT_ALGORITHMS)
def better_auth(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[BetterAuthServer]:
    """A Better Auth server on a fresh SQLite file, once per module and signing algorithm."""
    alg = request.param
    db_path = tmp_path_factory.mktemp(f"better-auth-{alg}") / "better-auth.db"
    server = start_better_auth(db_path, alg=alg)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def start_reference(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., BetterAuthServer]]:
    """Start Better Auth servers with custom options; every server started is stopped at teardown.

    Call it as `start_reference(db_path=None, **options)`; options are those of
    `start_better_auth`. Without `db_path` the server gets a fresh SQLite file.
    """
    started: list[BetterAuthServer] = []

    def start(db_path: Path | None = None, **options: object) -> BetterAuthServer:
        if db_path is None:
            db_path = tmp_path_factory.mktemp("better-auth") / "better-auth.db"
        server = start_better_auth(db_path, **options)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture(scope="module")
def start_aibrain(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., Service]]:
    """Start aibrain services; every one started is stopped at teardown.

    `start_aibrain("auth", data_dir=None, **env)` starts the auth service and
    `start_aibrain("api", auth_url=..., data_dir=None, **env)` the events API. Both use the suite's
    Better Auth secret unless `env` sets BETTER_AUTH_SECRET.
    """
    started: list[Service] = []

    def start(name: str, *, data_dir: Path | None = None, auth_url: str | None = None, **env: str) -> Service:
        if data_dir is None:
            data_dir = tmp_path_factory.mktemp(f"aibrain-{name}")
        env = {"BETTER_AUTH_SECRET": SECRET, **env}
        if name == "auth":
            service = start_auth(data_dir, **env)
        elif name == "api":
            if auth_url is None:
                raise ValueError("the events API needs auth_url, the origin of the server that issues its tokens")
            service = start_api(data_dir, auth_url, **env)
        else:
            raise ValueError(f"unknown aibrain service {name!r}: expected 'auth' or 'api'")
        started.append(service)
        return service

    yield start
    for service in started:
        service.stop()
