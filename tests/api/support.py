"""Helpers for the events API tests: a fake clock, claims, and the app on a real uvicorn server."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

import uvicorn
from starlette.applications import Starlette

from aibrain.api.app import create_app
from aibrain.settings import Settings, load_settings
from tests.fixtures.issuer import StubIssuer

T = TypeVar("T")

ORIGIN = "http://127.0.0.1:3000"  # the issuer and audience the tests sign for; nothing listens there
START_TIMEOUT = 10.0


class FakeClock:
    """A clock that moves only when a test calls advance(); starts at the real time."""

    def __init__(self) -> None:
        self.now = float(int(time.time()))

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def make_settings(tmp_path: Path, issuer: StubIssuer, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "data_dir": tmp_path / "data",
        "base_url": ORIGIN,
        "auth_server_url": issuer.url,
        "jwks_fetch_timeout": 2.0,
    }
    values.update(overrides)
    return load_settings(**values)


def claims_for(clock: FakeClock, user: str = "alice", **overrides: Any) -> dict[str, Any]:
    """Return Better Auth-shaped claims of `user`, valid for 900 s from the fake clock's now.

    Each keyword replaces one claim; the value `...` removes it.
    """
    claims: dict[str, Any] = {
        "iat": int(clock.now),
        "name": user.title(),
        "email": f"{user}@example.com",
        "emailVerified": True,
        "image": None,
        "id": user,
        "sub": user,
        "exp": int(clock.now) + 900,
        "iss": ORIGIN,
        "aud": ORIGIN,
    }
    claims.update(overrides)
    return {name: value for name, value in claims.items() if value is not ...}


class RunningApi:
    """The events API served by uvicorn on 127.0.0.1 in a thread with its own event loop."""

    def __init__(self, app: Starlette) -> None:
        self.app = app
        self.loop = asyncio.new_event_loop()
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.bind(("127.0.0.1", 0))
        port = self._socket.getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        config = uvicorn.Config(app, log_level="warning", lifespan="on", access_log=False)
        self.server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._serve, name="events-api", daemon=True)

    def _serve(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_until_complete(self.server.serve(sockets=[self._socket]))
        self.loop.close()

    def start(self) -> None:
        self._thread.start()
        deadline = time.monotonic() + START_TIMEOUT
        while not self.server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the events API did not start")
            time.sleep(0.01)

    def stop(self) -> None:
        self.server.should_exit = True
        self._thread.join(timeout=START_TIMEOUT)
        self._socket.close()

    def call(self, coroutine: Coroutine[Any, Any, T]) -> T:
        """Run a coroutine on the server's event loop (to refresh the JWKS, inspect stores...)."""
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout=START_TIMEOUT)


def serve(settings: Settings, clock: FakeClock) -> RunningApi:
    api = RunningApi(create_app(settings, clock=clock))
    api.start()
    return api


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}

