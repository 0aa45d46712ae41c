"""Helpers for the SDK tests: a settable clock, transports that log requests, expired tokens."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from pathlib import Path

import httpx

from aibrain.auth.db import create_database_engine
from aibrain.auth.keys import KeyStore
from tests.servers import TEST_SECRET

PASSWORD = "password123"


class FakeClock:
    """A clock that starts at the real time and moves only when a test advances it."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class RecordingTransport(httpx.HTTPTransport):
    """A real HTTP transport that also records the path of each request it sends."""

    def __init__(self) -> None:
        super().__init__()
        self.paths: list[str] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.paths.append(request.url.path)
        return super().handle_request(request)


class AsyncRecordingTransport(httpx.AsyncHTTPTransport):
    """The async twin of RecordingTransport."""

    def __init__(self) -> None:
        super().__init__()
        self.paths: list[str] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.paths.append(request.url.path)
        return await super().handle_async_request(request)


def claims_of(jwt: str) -> dict[str, object]:
    """Decode a JWT's payload without verifying it."""
    payload = jwt.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def expired_copy(jwt: str, data_dir: Path) -> str:
    """Sign a copy of `jwt` that expired an hour ago, with the auth service's own current key.

    The auth service in `data_dir` never issues an expired token, and waiting for one to expire
    would make the test sleep. Signed with the service's real key, the copy is rejected by the API
    for its age alone.
    """
    engine = create_database_engine(f"sqlite:///{data_dir / 'auth.db'}")
    try:
        keys = KeyStore(engine, TEST_SECRET)
        keys.load()
        now = int(time.time())
        claims = {**claims_of(jwt), "iat": now - 7200, "exp": now - 3600}
        return asyncio.run(keys.sign(claims))
    finally:
        engine.dispose()
