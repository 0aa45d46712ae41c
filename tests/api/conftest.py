"""Fixtures for the events API tests: a fake clock, a stub issuer and the app on a real server."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from aibrain.settings import Settings
from tests.api.support import FakeClock, RunningApi, make_settings, serve
from tests.fixtures.issuer import StubIssuer


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def issuer() -> Iterator[StubIssuer]:
    with StubIssuer() as stub:
        stub.add_key("RS256", "rsa-1")
        stub.add_key("EdDSA", "ed-1")
        yield stub


@pytest.fixture
def settings(tmp_path: Path, issuer: StubIssuer) -> Settings:
    return make_settings(tmp_path, issuer)


@pytest.fixture
def api(settings: Settings, clock: FakeClock) -> Iterator[RunningApi]:
    running = serve(settings, clock)
    yield running
    running.stop()


@pytest.fixture
def http(api: RunningApi) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=api.url, timeout=10.0) as client:
        yield client

