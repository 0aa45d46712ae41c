"""aibrain's events API trusting a real Better Auth 1.7 server: its JWTs, its JWKS, its key rotation."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import httpx
import pytest

from tests.servers import Service

from .auth_requests import bearer, jose_header, sign_up, token_from_get_session, token_from_token_endpoint
from .better_auth_process import BetterAuthServer

pytestmark = pytest.mark.interop

@pytest.fixture(scope="module")
def api(better_auth: BetterAuthServer, start_aibrain: Callable[..., Service]) -> Iterator[Service]:
    """The events API trusting `better_auth`, started before Better Auth has created any signing key."""
    service = start_aibrain("api", auth_url=better_auth.url)
    yield service
    service.stop()


def test_api_me_with_token_endpoint_jwt(better_auth: BetterAuthServer, api: Service) -> None:
    user = sign_up(better_auth.url, f"me-token-{better_auth.port}@example.com")
    token = token_from_token_endpoint(better_auth.url, user)

    response = httpx.get(f"{api.url}/me", headers=bearer(token))

    assert response.status_code == 200, response.text
    assert response.json() == {
        "id": user.id,
        "email": user.email,
        "name": "Interop User",
        "email_verified": False,
        "image": None,
    }


def test_api_me_with_get_session_jwt(better_auth: BetterAuthServer, api: Service) -> None:
    user = sign_up(better_auth.url, f"me-session-{better_auth.port}@example.com")
    token = token_from_get_session(better_auth.url, user)

    response = httpx.get(f"{api.url}/me", headers=bearer(token))

    assert response.status_code == 200, response.text
    assert response.json()["id"] == user.id


def test_api_events_round_trip(better_auth: BetterAuthServer, api: Service) -> None:
    user = sign_up(better_auth.url, f"events-{better_auth.port}@example.com")
    token = token_from_token_endpoint(better_auth.url, user)

    created = httpx.post(f"{api.url}/events", json={"type": "note", "data": {"text": "hello"}}, headers=bearer(token))
    listed = httpx.get(f"{api.url}/events", headers=bearer(token))

    assert created.status_code == 201, created.text
    assert listed.status_code == 200, listed.text
    assert [event["id"] for event in listed.json()["events"]] == [created.json()["id"]]
    assert listed.json()["events"][0]["data"] == {"text": "hello"}


def test_api_events_isolated_per_user(better_auth: BetterAuthServer, api: Service) -> None:
    writer = sign_up(better_auth.url, f"writer-{better_auth.port}@example.com")
    reader = sign_up(better_auth.url, f"reader-{better_auth.port}@example.com")
    writer_token = token_from_token_endpoint(better_auth.url, writer)
    reader_token = token_from_token_endpoint(better_auth.url, reader)

    created = httpx.post(f"{api.url}/events", json={"type": "secret", "data": 1}, headers=bearer(writer_token))
    listed = httpx.get(f"{api.url}/events", headers=bearer(reader_token))

    assert created.status_code == 201, created.text
    assert listed.json()["events"] == []


def test_api_rejects_session_token_as_jwt(better_auth: BetterAuthServer, api: Service) -> None:
    user = sign_up(better_auth.url, f"opaque-{better_auth.port}@example.com")

    response = httpx.get(f"{api.url}/me", headers=bearer(user.session_token))

    assert response.status_code == 401


def test_api_rejects_jwt_of_other_better_auth(
    better_auth: BetterAuthServer, api: Service, start_reference: Callable[..., BetterAuthServer]
) -> None:
    # Another Better Auth server with the same algorithm has its own keys, issuer and audience.
    own_token = token_from_token_endpoint(better_auth.url, sign_up(better_auth.url, f"own-{better_auth.port}@example.com"))
    other = start_reference(alg=jose_header(own_token)["alg"])
    user = sign_up(other.url, f"stranger-{other.port}@example.com")
    token = token_from_token_endpoint(other.url, user)

    response = httpx.get(f"{api.url}/me", headers=bearer(token))

    assert response.status_code == 401


@pytest.mark.parametrize("alg", ["RS256", "EdDSA"])
def test_api_follows_better_auth_key_rotation(
    alg: str, start_reference: Callable[..., BetterAuthServer], start_aibrain: Callable[..., Service]
) -> None:
    rotation_seconds = 2
    # Better Auth reads its own wall clock, which a test cannot inject, so this test waits for a
    # real rotation. Two seconds leave time to sign and use the first token before its key expires.
    reference = start_reference(alg=alg, rotation_interval=rotation_seconds, grace_period=600)
    user = sign_up(reference.url, f"rotation-{alg.lower()}@example.com")
    old_token = token_from_token_endpoint(reference.url, user)
    api = start_aibrain("api", auth_url=reference.url)
    assert httpx.get(f"{api.url}/me", headers=bearer(old_token)).status_code == 200

    time.sleep(rotation_seconds + 0.2)
    new_token = token_from_token_endpoint(reference.url, user)
    published = [key["kid"] for key in httpx.get(f"{reference.auth_url}/jwks").json()["keys"]]

    assert jose_header(new_token)["kid"] != jose_header(old_token)["kid"]
    assert sorted(published) == sorted([jose_header(old_token)["kid"], jose_header(new_token)["kid"]])
    assert httpx.get(f"{api.url}/me", headers=bearer(new_token)).status_code == 200
    assert httpx.get(f"{api.url}/me", headers=bearer(old_token)).status_code == 200
