"""Fixtures of the hostile-input suite: a stub issuer and the events API as a real Granian process.

Servers are started once per module where the tests allow it. Each module that needs other
settings builds its own API with `api_factory`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.fixtures.issuer import StubIssuer
from tests.servers import Service, start_api


@dataclass
class ApiUnderTest:
    """A running events API, the stub issuer it trusts and its data folder."""

    service: Service
    issuer: StubIssuer
    data_dir: Path

    @property
    def url(self) -> str:
        return self.service.url


ApiFactory = Callable[..., ApiUnderTest]


@pytest.fixture(scope="module")
def api_factory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiFactory]:
    """Start an events API trusting a stub issuer; keyword arguments become environment settings.

    Every API and issuer started through the factory is stopped when the module ends. The issuer
    publishes an RS256 key `rsa-1` unless `keys` names others (a list of (alg, kid) pairs).
    """
    started: list[ApiUnderTest] = []

    def start(issuer: StubIssuer | None = None, keys: list[tuple[str, str]] | None = None, **env: str) -> ApiUnderTest:
        if issuer is None:
            issuer = StubIssuer().start()
            for alg, kid in keys if keys is not None else [("RS256", "rsa-1")]:
                issuer.add_key(alg, kid)
        data_dir = tmp_path_factory.mktemp("api")
        service = start_api(data_dir, issuer.url, **env)
        api = ApiUnderTest(service, issuer, data_dir)
        started.append(api)
        return api

    yield start
    for api in started:
        api.service.stop()
        api.issuer.stop()
