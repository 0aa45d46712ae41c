"""Route tests against the events API served by uvicorn on 127.0.0.1 with a stub issuer."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

from aibrain.api.stores import descriptor_capped
import msgspec
import pytest

from aibrain.api.storage import user_dir_name
from tests.api.support import FakeClock, RunningApi, bearer, claims_for, make_settings, serve
from tests.fixtures.issuer import StubIssuer, b64url


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


def test_me_with_oversized_token_is_rejected(http: httpx.Client) -> None:
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


def test_events_isolated_between_users(http: httpx.Client, issuer: StubIssuer, clock: FakeClock) -> None:
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
    assert "GET" in response.headers["allow"]
    assert "POST" in response.headers["allow"]


@pytest.fixture
def token(issuer: StubIssuer, clock: FakeClock) -> str:
    return issuer.sign(claims_for(clock), "rsa-1")


def post_raw(http: httpx.Client, token: str, body: bytes, content_type: str = "application/json") -> httpx.Response:
    return http.post("/events", content=body, headers={**bearer(token), "Content-Type": content_type})


@pytest.mark.parametrize(
    "body",
    [
        b'{"type":"t","data":NaN}',
        b'{"type":"t","data":-Infinity}',
        b'{"type":"t","data":"\\ud800"}',
        b'{"type":"t","data":"\\udc00x"}',
        b'{"type":"t","data":1,}',
        b"not json",
        b"",
        b'{"type":"t","data":"\xff"}',
    ],
)
def test_events_reject_invalid_json(http: httpx.Client, token: str, body: bytes) -> None:
    response = post_raw(http, token, body)

    assert response.status_code == 400
    assert response.json()["code"] == "INVALID_JSON"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"type": 1, "data": 1}, "$.type"),
        ({"type": "t"}, "data"),
        ({"data": 1}, "type"),
        ({"type": "t", "data": 1, "extra": 2}, "extra"),
        ([1], "object"),
        ({"type": "", "data": 1}, "type"),
        ({"type": "a\nb", "data": 1}, "type"),
        ({"type": "a\u200bb", "data": 1}, "type"),
        ({"type": "x" * 129, "data": 1}, "type"),
    ],
)
def test_events_reject_invalid_fields(http: httpx.Client, token: str, body: object, field: str) -> None:
    response = post_event(http, token, body)

    assert response.status_code == 422
    assert response.json()["code"] == "VALIDATION_ERROR"
    assert field in response.json()["message"]


def test_events_duplicate_keys_last_wins(http: httpx.Client, token: str) -> None:
    response = post_raw(http, token, b'{"type":"first","type":"second","data":{"k":1,"k":2}}')

    assert response.status_code == 201
    assert response.json()["type"] == "second"
    assert response.json()["data"] == {"k": 2}


def test_events_accept_type_with_sql_and_unicode(http: httpx.Client, token: str) -> None:
    for event_type in ["x'); DROP TABLE events;--", "a%b", "Ünïcödé 😀 type"]:
        response = post_event(http, token, {"type": event_type, "data": 1})
        assert response.status_code == 201


@pytest.mark.parametrize("depth", [65, 150, 100_000])
def test_events_reject_deep_json(http: httpx.Client, token: str, depth: int) -> None:
    body = b'{"type":"t","data":' + b"[" * depth + b"]" * depth + b"}"

    response = post_raw(http, token, body)

    assert response.status_code == 400
    assert response.json()["code"] == "INVALID_JSON"
    assert "64" in response.json()["message"]


def test_events_reject_deep_array_body(http: httpx.Client, token: str) -> None:
    response = post_raw(http, token, b"[" * 100_000)

    assert response.status_code == 400


def test_events_accept_max_depth(http: httpx.Client, token: str) -> None:
    body = b'{"type":"t","data":' + b"[" * 63 + b"]" * 63 + b"}"

    response = post_raw(http, token, body)

    assert response.status_code == 201


def test_events_reject_wrong_media_type(http: httpx.Client, token: str) -> None:
    response = post_raw(http, token, b'{"type":"t","data":1}', "text/plain")

    assert response.status_code == 415
    assert response.json()["code"] == "UNSUPPORTED_MEDIA_TYPE"


def test_events_accept_json_with_utf8_charset(http: httpx.Client, token: str) -> None:
    response = post_raw(http, token, b'{"type":"t","data":1}', "application/json; charset=UTF-8")

    assert response.status_code == 201


def test_events_reject_large_content_length(api: RunningApi, tmp_path: Path, issuer: StubIssuer, clock: FakeClock) -> None:
    token = issuer.sign(claims_for(clock), "rsa-1")
    body = b'{"type":"t","data":"' + b"x" * 1_100_000 + b'"}'
    with httpx.Client(base_url=api.url) as client:
        response = post_raw(client, token, body)

    assert response.status_code == 413
    assert response.json()["code"] == "BODY_TOO_LARGE"


def test_events_reject_large_chunked_body(http: httpx.Client, token: str) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"type":"t","data":"'
        for _ in range(200):
            yield b"x" * 10_000
        yield b'"}'

    response = http.post("/events", content=chunks(), headers={**bearer(token), "Content-Type": "application/json"})

    assert response.status_code == 413


def test_events_accept_small_chunked_body(http: httpx.Client, token: str) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"type":"t",'
        yield b'"data":1}'

    response = http.post("/events", content=chunks(), headers={**bearer(token), "Content-Type": "application/json"})

    assert response.status_code == 201


def test_events_paging_with_cursor(http: httpx.Client, token: str, clock: FakeClock) -> None:
    for index in range(7):
        clock.advance(0.5 if index % 2 else 0)  # some events share a millisecond
        post_event(http, token, {"type": "t", "data": index})

    seen: list[int] = []
    cursor: str | None = None
    pages = 0
    while True:
        params: dict[str, str | int] = {"limit": 3}
        if cursor is not None:
            params["cursor"] = cursor
        page = http.get("/events", params=params, headers=bearer(token)).json()
        seen += [event["data"] for event in page["events"]]
        cursor = page["next_cursor"]
        pages += 1
        if cursor is None:
            break

    assert seen == [6, 5, 4, 3, 2, 1, 0]
    assert pages == 3


def test_events_filter_exact_type(http: httpx.Client, token: str) -> None:
    types = ["a_b", "axb", "a%b", "A_B", "x'); DROP TABLE events;--"]
    for event_type in types:
        post_event(http, token, {"type": event_type, "data": event_type})

    found = {
        event_type: [event["data"] for event in http.get("/events", params={"type": event_type}, headers=bearer(token)).json()["events"]]
        for event_type in types + ["%", "_"]
    }

    assert found == {**{event_type: [event_type] for event_type in types}, "%": [], "_": []}


@pytest.mark.parametrize(
    "query",
    ["type=", "type=a&type=b", "limit=0", "limit=501", "limit=abc", "limit=-1", "limit=" + "9" * 5000, "limit=1&limit=2", "cursor=bogus", "cursor=" + "A" * 500],
)
def test_events_reject_invalid_query(http: httpx.Client, token: str, query: str) -> None:
    response = http.get(f"/events?{query}", headers=bearer(token))

    assert response.status_code == 400
    assert response.json()["code"] in ("INVALID_QUERY", "INVALID_CURSOR")


def test_events_list_creates_no_file(api: RunningApi, http: httpx.Client, token: str) -> None:
    response = http.get("/events", headers=bearer(token))

    assert response.json() == {"events": [], "next_cursor": None}
    assert not api.app.state.stores.users_dir.exists()


@pytest.mark.parametrize("header", [{"alg": "none", "kid": "rsa-1"}, {"alg": "None"}, {"alg": "NONE"}, {"kid": "rsa-1"}])
def test_unsigned_token_creates_no_user_dir(api: RunningApi, http: httpx.Client, clock: FakeClock, header: dict[str, str]) -> None:
    token = f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(claims_for(clock)).encode())}."

    me = http.get("/me", headers=bearer(token))
    post = post_event(http, token, {"type": "t", "data": 1})

    assert me.status_code == 401
    assert post.status_code == 401
    assert not api.app.state.stores.users_dir.exists()


def test_events_full_disk_rejects_writes(api: RunningApi, http: httpx.Client, token: str) -> None:
    post_event(http, token, {"type": "t", "data": 1})
    store = api.app.state.stores._entries["alice"].store
    pages = store.execute_for_tests("PRAGMA page_count")[0][0]
    store.execute_for_tests(f"PRAGMA max_page_count = {pages}")

    responses = [post_event(http, token, {"type": "t", "data": "x" * 5000}) for _ in range(5)]
    listed = http.get("/events", headers=bearer(token))

    assert responses[-1].status_code == 507
    assert responses[-1].json()["code"] == "STORAGE_FULL"
    assert listed.status_code == 200


def test_events_read_only_store_rejects_writes(api: RunningApi, http: httpx.Client, token: str) -> None:
    post_event(http, token, {"type": "t", "data": 1})
    api.app.state.stores._entries["alice"].store.execute_for_tests("PRAGMA query_only = 1")

    written = post_event(http, token, {"type": "t", "data": 2})
    listed = http.get("/events", headers=bearer(token))

    assert written.status_code == 503
    assert written.json()["code"] == "STORAGE_UNAVAILABLE"
    assert len(listed.json()["events"]) == 1


def test_health_reports_keys_and_stores(http: httpx.Client, token: str) -> None:
    post_event(http, token, {"type": "t", "data": 1})

    health = http.get("/health").json()

    assert health["status"] == "ok"
    assert health["jwks"]["kids"] == ["ed-1", "rsa-1"]
    assert health["stores"]["open"] == 1
    assert health["stores"]["max"] == descriptor_capped(1024)


def test_ready_when_keys_known(http: httpx.Client) -> None:
    assert http.get("/ready").status_code == 200


def test_no_keys_is_503_then_recovers(tmp_path: Path, issuer: StubIssuer, clock: FakeClock) -> None:
    issuer.set_mode("error")
    running = serve(make_settings(tmp_path, issuer, jwks_refetch_cooldown=5), clock)
    token = issuer.sign(claims_for(clock), "rsa-1")
    with httpx.Client(base_url=running.url) as client:
        down = client.get("/me", headers=bearer(token))
        not_ready = client.get("/ready")
        degraded = client.get("/health").json()["status"]
        issuer.set_mode("ok")
        clock.advance(5)
        up = client.get("/me", headers=bearer(token))
        ready = client.get("/ready")
    running.stop()

    assert down.status_code == 503
    assert down.json()["code"] == "AUTH_UNAVAILABLE"
    assert down.headers["retry-after"] == "5"
    assert not_ready.status_code == 503
    assert degraded == "degraded"
    assert up.status_code == 200
    assert ready.status_code == 200


def test_rotated_key_accepted_with_one_fetch(api: RunningApi, http: httpx.Client, issuer: StubIssuer, clock: FakeClock) -> None:
    old = issuer.sign(claims_for(clock), "rsa-1")
    http.get("/me", headers=bearer(old))
    issuer.add_key("RS256", "rsa-2")
    fetches = issuer.fetches
    new = issuer.sign(claims_for(clock), "rsa-2")

    first = http.get("/me", headers=bearer(new))
    still_old = http.get("/me", headers=bearer(old))
    issuer.unpublish("rsa-1")
    api.call(api.app.state.jwks.refresh())
    retired = http.get("/me", headers=bearer(old))

    assert first.status_code == 200
    assert issuer.fetches - fetches == 2  # the refetch for rsa-2 and the explicit refresh
    assert still_old.status_code == 200
    assert retired.status_code == 401


def test_unknown_kid_concurrent_requests_fetch_once(api: RunningApi, issuer: StubIssuer, clock: FakeClock) -> None:
    token = issuer.sign(claims_for(clock), "rsa-1", header={"alg": "RS256", "kid": "nobody"})
    fetches = issuer.fetches

    async def many() -> list[int]:
        async with httpx.AsyncClient(base_url=api.url, timeout=30.0) as client:
            responses = await asyncio.gather(*(client.get("/me", headers=bearer(token)) for _ in range(20)))
            return [response.status_code for response in responses]

    statuses = asyncio.run(many())

    assert statuses == [401] * 20
    assert issuer.fetches - fetches == 1


@pytest.mark.parametrize("mode", ["error", "garbage", "empty", "hang"])
def test_failed_refresh_keeps_serving(tmp_path: Path, issuer: StubIssuer, clock: FakeClock, mode: Any) -> None:
    running = serve(make_settings(tmp_path, issuer, jwks_fetch_timeout=0.5), clock)
    token = issuer.sign(claims_for(clock), "rsa-1")
    unknown = issuer.sign(claims_for(clock), "rsa-1", header={"alg": "RS256", "kid": "unknown"})
    issuer.set_mode(mode)
    running.call(running.app.state.jwks.refresh())
    clock.advance(60)
    with httpx.Client(base_url=running.url) as client:
        rejected = client.get("/me", headers=bearer(unknown))
        accepted = client.get("/me", headers=bearer(token))
    issuer.set_mode("ok")
    running.stop()

    assert rejected.status_code == 401
    assert accepted.status_code == 200


def test_shutdown_checkpoints_stores(tmp_path: Path, issuer: StubIssuer, clock: FakeClock) -> None:
    running = serve(make_settings(tmp_path, issuer), clock)
    token = issuer.sign(claims_for(clock), "rsa-1")
    with httpx.Client(base_url=running.url) as client:
        for index in range(20):
            post_event(client, token, {"type": "t", "data": index})
    path = running.app.state.stores.path_for("alice")

    running.stop()

    wal = path.with_name("events.db-wal")
    assert not wal.exists() or wal.stat().st_size == 0
    assert running.app.state.stores.open_count == 0


def test_lifespan_logs_start_and_stop(tmp_path: Path, issuer: StubIssuer, clock: FakeClock, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="aibrain.api.app")

    serve(make_settings(tmp_path, issuer), clock).stop()

    messages = [record.getMessage() for record in caplog.records if record.name == "aibrain.api.app"]
    assert len(messages) == 2
    assert messages[0].startswith("events API started")
    assert messages[1].startswith("events API stopped")


def test_start_survives_unreachable_issuer(tmp_path: Path, issuer: StubIssuer, clock: FakeClock, caplog: pytest.LogCaptureFixture) -> None:
    issuer.set_mode("error")
    caplog.set_level(logging.WARNING, logger="aibrain.api.jwks")

    running = serve(make_settings(tmp_path, issuer), clock)
    with httpx.Client(base_url=running.url) as client:
        health = client.get("/health")
    running.stop()

    assert health.status_code == 200
    assert health.json()["status"] == "degraded"
    assert any("failed" in record.getMessage() for record in caplog.records)
