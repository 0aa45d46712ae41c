"""Route tests against the events API served by uvicorn on 127.0.0.1 with a stub issuer."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import httpx
import msgspec
import pytest

from aibrain.api.storage import user_dir_name
from tests.api.support import FakeClock, RunningApi, bearer, claims_for, make_settings, serve
from tests.fixtures.issuer import StubIssuer


def post_event(http: httpx.Client, token: str, body: object) -> httpx.Response:
    return http.post("/events", json=body, headers=bearer(token))


def test_me_returns_token_user(http: httpx.Client, issuer: StubIssuer, clock: FakeClock) -> None:
    token = issuer.sign(claims_for(clock, "alice"), "rsa-1")

    response = http.get("/me", headers=bearer(token))

    assert response.status_code == 200
    assert response.json() == {
        "id": "alice",
        "email": "alice@example.com",
        "name": "Alice",
        "email_verified": True,
        "image": None,
    }


def test_me_accepts_eddsa_token(http: httpx.Client, issuer: StubIssuer, clock: FakeClock) -> None:
    token = issuer.sign(claims_for(clock, "bob"), "ed-1")

    response = http.get("/me", headers=bearer(token))

    assert response.status_code == 200
    assert response.json()["id"] == "bob"


def test_me_accepts_lower_case_scheme(http: httpx.Client, issuer: StubIssuer, clock: FakeClock) -> None:
    token = issuer.sign(claims_for(clock), "rsa-1")

    response = http.get("/me", headers={"Authorization": f"bearer {token}"})

    assert response.status_code == 200


def test_me_without_token_is_401(http: httpx.Client) -> None:
    response = http.get("/me")

    assert response.status_code == 401
    assert response.json()["code"] == "MISSING_TOKEN"
    assert response.headers["www-authenticate"].startswith("Bearer")


@pytest.mark.parametrize("header", ["Basic abc", "Bearer", "Token x.y.z"])
def test_me_with_bad_authorization_header_is_401(http: httpx.Client, header: str) -> None:
    response = http.get("/me", headers={"Authorization": header})

    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")


def test_me_with_invalid_token_is_401_with_challenge(http: httpx.Client) -> None:
    response = http.get("/me", headers=bearer("a.b.c"))

    assert response.status_code == 401
    assert response.json()["code"] == "INVALID_TOKEN"
    assert 'error="invalid_token"' in response.headers["www-authenticate"]


def test_me_with_oversized_token_is_rejected(http: httpx.Client, settings: object) -> None:
    response = http.get("/me", headers=bearer("a" * 20_000))

    assert response.status_code in (401, 431)


def test_events_post_then_list(http: httpx.Client, issuer: StubIssuer, clock: FakeClock) -> None:
    token = issuer.sign(claims_for(clock), "rsa-1")

    created = post_event(http, token, {"type": "note", "data": {"text": "hi", "n": [1, 2.5, None]}})
    listed = http.get("/events", headers=bearer(token))

    assert created.status_code == 201
    event = created.json()
    assert event["type"] == "note"
    assert event["data"] == {"text": "hi", "n": [1, 2.5, None]}
    assert event["id"] == 1
    assert event["created_at"].endswith("Z")
    assert listed.status_code == 200
    assert listed.json() == {"events": [event], "next_cursor": None}


def test_events_created_at_is_rfc3339_milliseconds(http: httpx.Client, issuer: StubIssuer, clock: FakeClock) -> None:
    clock.now = 1_800_000_000.25
    token = issuer.sign(claims_for(clock), "rsa-1")

    event = post_event(http, token, {"type": "t", "data": 1}).json()

    assert event["created_at"] == "2027-01-15T08:00:00.250Z"


@pytest.mark.parametrize("data", ["bare string", None, 0, [], {}, True, -1.5e300, 2**70])
def test_events_accept_any_json_data(http: httpx.Client, issuer: StubIssuer, clock: FakeClock, data: object) -> None:
    token = issuer.sign(claims_for(clock), "rsa-1")

    response = post_event(http, token, {"type": "t", "data": data})

    assert response.status_code == 201
    assert response.json()["data"] == data


def test_events_isolated_between_users(http: httpx.Client, issuer: StubIssuer, clock: FakeClock, settings: object) -> None:
    alice = issuer.sign(claims_for(clock, "alice"), "rsa-1")
    bob = issuer.sign(claims_for(clock, "bob"), "ed-1")
    post_event(http, alice, {"type": "secret", "data": "alice's"})

    bob_events = http.get("/events", headers=bearer(bob)).json()
    alice_events = http.get("/events", headers=bearer(alice)).json()

    assert bob_events["events"] == []
    assert len(alice_events["events"]) == 1


def test_events_each_user_has_own_file(api: RunningApi, http: httpx.Client, issuer: StubIssuer, clock: FakeClock) -> None:
    odd_sub = "user/../../etc"
    token = issuer.sign(claims_for(clock, odd_sub), "rsa-1")

    response = post_event(http, token, {"type": "t", "data": 1})

    users_dir: Path = api.app.state.stores.users_dir
    assert response.status_code == 201
    assert (users_dir / user_dir_name(odd_sub) / "events.db").is_file()
    assert sorted(path.name for path in users_dir.iterdir()) == [user_dir_name(odd_sub)]


def test_events_concurrent_first_writes_all_succeed(api: RunningApi, issuer: StubIssuer, clock: FakeClock) -> None:
    token = issuer.sign(claims_for(clock, "newcomer"), "rsa-1")

    async def post_many() -> list[int]:
        async with httpx.AsyncClient(base_url=api.url, timeout=30.0) as client:
            requests = [
                client.post("/events", json={"type": "t", "data": index}, headers=bearer(token)) for index in range(50)
            ]
            return [response.status_code for response in await asyncio.gather(*requests)]

    statuses = asyncio.run(post_many())

    assert statuses == [201] * 50
    with httpx.Client(base_url=api.url) as client:
        page = client.get("/events", params={"limit": 500}, headers=bearer(token)).json()
    assert sorted(event["data"] for event in page["events"]) == list(range(50))


def test_unknown_route_is_json_404(http: httpx.Client) -> None:
    response = http.get("/nope")

    assert response.status_code == 404
    assert response.json()["code"] == "NOT_FOUND"


def test_wrong_method_is_json_405(http: httpx.Client) -> None:
    response = http.delete("/events")

    assert response.status_code == 405
    assert response.json()["code"] == "METHOD_NOT_ALLOWED"
    assert response.headers["allow"] == "GET, HEAD, POST" or "POST" in response.headers["allow"]
