"""JWT refresh against real services: before expiry by the client's clock, after a 401 TOKEN_EXPIRED."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from aibrain.client import AuthenticationError, Client
from tests.client.conftest import Services
from tests.client.support import PASSWORD, FakeClock, RecordingTransport, claims_of, expired_copy
from tests.servers import start_api, start_auth

JWT_LIFETIME = 120


@pytest.fixture(scope="module")
def short_lived(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Services]:
    """An auth service whose JWTs live JWT_LIFETIME seconds instead of 15 minutes."""
    data_dir = tmp_path_factory.mktemp("short-lived")
    auth = start_auth(data_dir, AIBRAIN_JWT_EXPIRES_IN=str(JWT_LIFETIME))
    api = start_api(data_dir, auth.url)
    yield Services(auth, api, data_dir)
    api.stop()
    auth.stop()


def test_refresh_not_needed_for_fresh_jwt(short_lived, unique_email):
    transport = RecordingTransport()
    with Client(short_lived.auth.url, short_lived.api.url, transport=transport, clock=FakeClock()) as client:
        client.sign_up(unique_email, PASSWORD)
        client.me()
    assert transport.paths == ["/api/auth/sign-up/email", "/me"]


def test_refresh_before_expiry_by_client_clock(short_lived, unique_email):
    clock = FakeClock()
    transport = RecordingTransport()
    with Client(short_lived.auth.url, short_lived.api.url, transport=transport, clock=clock) as client:
        client.sign_up(unique_email, PASSWORD)
        first_exp = claims_of(client.jwt)["exp"]
        clock.now = first_exp - 59  # inside the 60 s refresh margin
        transport.paths.clear()

        assert client.me().email == unique_email
    assert transport.paths == ["/api/auth/token", "/me"]


def test_refresh_jwt_from_server_has_short_lifetime(short_lived, unique_email):
    with Client(short_lived.auth.url, short_lived.api.url) as client:
        client.sign_up(unique_email, PASSWORD)
        claims = claims_of(client.jwt)
    assert claims["exp"] - claims["iat"] == JWT_LIFETIME


def test_refresh_after_token_expired_retries_once(services, unique_email):
    with Client(services.auth.url, services.api.url) as client:
        session = client.sign_up(unique_email, PASSWORD)
        expired = expired_copy(client.jwt, services.data_dir)

    # The clock claims the expired JWT is still young, so only the API's 401 can trigger the refresh.
    clock = FakeClock()
    clock.now = claims_of(expired)["iat"]
    transport = RecordingTransport()
    with Client(services.auth.url, services.api.url, token=session.token, jwt=expired, transport=transport, clock=clock) as client:
        assert client.me().id == session.user.id
        assert client.jwt != expired
    assert transport.paths == ["/me", "/api/auth/token", "/me"]


def test_refresh_impossible_with_jwt_only(services, unique_email):
    with Client(services.auth.url, services.api.url) as client:
        client.sign_up(unique_email, PASSWORD)
        expired = expired_copy(client.jwt, services.data_dir)

    transport = RecordingTransport()
    with Client(services.auth.url, services.api.url, jwt=expired, transport=transport) as client:
        with pytest.raises(AuthenticationError, match="TOKEN_EXPIRED") as caught:
            client.me()
    assert caught.value.code == "TOKEN_EXPIRED"
    assert transport.paths == ["/me"]


def test_refresh_after_sign_out_raises_authentication_error(services, unique_email):
    with Client(services.auth.url, services.api.url) as client:
        session = client.sign_up(unique_email, PASSWORD)
        expired = expired_copy(client.jwt, services.data_dir)
        client.sign_out()

    clock = FakeClock()
    clock.now = claims_of(expired)["iat"]
    with Client(services.auth.url, services.api.url, token=session.token, jwt=expired, clock=clock) as client:
        with pytest.raises(AuthenticationError) as caught:
            client.me()
    assert caught.value.code == "UNAUTHORIZED"
