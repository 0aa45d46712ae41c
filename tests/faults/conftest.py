"""Fixtures for fault and load tests: a stub JWKS issuer with one RS256 key."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.fixtures.issuer import StubIssuer

KID = "rsa-faults-1"


@pytest.fixture
def issuer() -> Iterator[StubIssuer]:
    with StubIssuer() as stub:
        stub.add_key("RS256", KID)
        yield stub
