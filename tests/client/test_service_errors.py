"""Real 429 and 503 responses: a rate-limited auth service and an API whose auth service is down."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from aibrain.client import AuthenticationError, Client, RateLimited, ServiceUnavailable
from tests.client.conftest import Services
from tests.client.support import PASSWORD
from tests.servers import Service, free_port, start_api, start_auth

RATE_LIMIT_WINDOW = 60


@pytest.fixture(scope="module")
def limited(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    """An auth service that allows one sign-in per client address and minute."""
    auth = start_auth(
        tmp_path_factory.mktemp("limited"),
        AIBRAIN_RATE_LIMIT_ENABLED="true",
        AIBRAIN_RATE_LIMIT_AUTH_MAX="1",
        AIBRAIN_RATE_LIMIT_WINDOW=str(RATE_LIMIT_WINDOW),
    )
    yield auth
    auth.stop()


@pytest.fixture(scope="module")
def orphan_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    """An events API whose auth service address has nothing listening, so it never gets keys."""
    api = start_api(tmp_path_factory.mktemp("orphan"), f"http://127.0.0.1:{free_port()}")
    yield api
    api.stop()


def test_rate_limited_carries_retry_after(limited):
    with Client(limited.url) as client:
        with pytest.raises(AuthenticationError):
            client.sign_in("nobody@example.com", PASSWORD)  # uses up the one allowed request
        with pytest.raises(RateLimited, match="TOO_MANY_REQUESTS") as caught:
            client.sign_in("nobody@example.com", PASSWORD)
    assert caught.value.status == 429
    assert caught.value.retry_after is not None
    assert 1 <= caught.value.retry_after <= RATE_LIMIT_WINDOW


def test_service_unavailable_without_signing_keys(services: Services, orphan_api, unique_email):
    with Client(services.auth.url, services.api.url) as client:
        client.sign_up(unique_email, PASSWORD)
        jwt = client.jwt
    with Client(services.auth.url, orphan_api.url, jwt=jwt) as client:
        with pytest.raises(ServiceUnavailable) as caught:
            client.me()
    assert caught.value.code == "AUTH_UNAVAILABLE"
    assert caught.value.retry_after is not None
    assert caught.value.retry_after >= 1
