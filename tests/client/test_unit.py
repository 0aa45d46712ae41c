"""Cases no real service produces, with httpx.MockTransport: proxy pages, odd headers, bad bodies."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from email.utils import format_datetime
from datetime import UTC, datetime

import httpx
import pytest

from aibrain.client import (
    APIError,
    AuthenticationError,
    Client,
    Conflict,
    DecodeError,
    NotFound,
    PermissionDenied,
    RateLimited,
    ServiceUnavailable,
)
from aibrain.client._base import jwt_expiry
from tests.client.support import FakeClock

AUTH = "http://auth.test"
API = "http://api.test"


def mock_client(handler: Callable[[httpx.Request], httpx.Response], **kwargs: object) -> Client:
    # A signed-in client by default, since one without credentials raises before any request.
    if "token" not in kwargs:
        kwargs.setdefault("jwt", make_jwt({"sub": "user-1", "exp": 4_000_000_000}))
    return Client(AUTH, API, transport=httpx.MockTransport(handler), **kwargs)  # type: ignore[arg-type]


def make_jwt(claims: dict[str, object]) -> str:
    def part(value: object) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'none'})}.{part(claims)}.signature"


def signed_in_body() -> dict[str, object]:
    stamp = "2030-01-01T00:00:00.000Z"
    user = {"id": "u1", "email": "ada@example.com", "name": "", "emailVerified": False, "image": None, "createdAt": stamp, "updatedAt": stamp}
    session = {"id": "s1", "token": "session", "expiresAt": stamp, "createdAt": stamp, "userId": "u1"}
    return {"token": "session", "user": user, "session": session, "jwt": make_jwt({"exp": 4_000_000_000})}


def error(status: int, code: str, message: str = "server message", **headers: str) -> httpx.Response:
    return httpx.Response(status, json={"message": message, "code": code}, headers=headers)


@pytest.mark.parametrize(
    ("status", "code", "expected"),
    [
        (400, "INVALID_QUERY", APIError),
        (401, "INVALID_TOKEN", AuthenticationError),
        (403, "INVALID_ORIGIN", PermissionDenied),
        (404, "NOT_FOUND", NotFound),
        (409, "CONFLICT", Conflict),
        (422, "USER_ALREADY_EXISTS_USE_ANOTHER_EMAIL", Conflict),
        (422, "UNPROCESSABLE_ENTITY", APIError),
        (429, "TOO_MANY_REQUESTS", RateLimited),
        (500, "INTERNAL_ERROR", APIError),
        (503, "STORAGE_UNAVAILABLE", ServiceUnavailable),
        (507, "STORAGE_FULL", APIError),
    ],
)
def test_unit_status_maps_to_exception_class(status, code, expected):
    with mock_client(lambda request: error(status, code), jwt="a.b.c") as client:
        with pytest.raises(APIError) as caught:
            client.me()
    assert type(caught.value) is expected
    assert caught.value.code == code


def test_unit_error_message_names_code_and_server_message():
    with mock_client(lambda request: error(400, "INVALID_JSON", "body is not valid JSON")) as client:
        with pytest.raises(APIError) as caught:
            client.add_event("note", 1)
    assert str(caught.value) == "HTTP 400 INVALID_JSON: body is not valid JSON"


def test_unit_non_json_502_from_proxy():
    page = "<html><body><h1>502 Bad Gateway</h1></body></html>"
    with mock_client(lambda request: httpx.Response(502, text=page)) as client:
        with pytest.raises(APIError) as caught:
            client.sign_in("ada@example.com", "password123")
    assert caught.value.status == 502
    assert caught.value.code is None
    assert str(caught.value) == f"HTTP 502 no error code: Bad Gateway ({page})"


def test_unit_non_json_error_body_is_shortened():
    with mock_client(lambda request: httpx.Response(500, text="x" * 10_000)) as client:
        with pytest.raises(APIError) as caught:
            client.me()
    assert caught.value.message == f"Internal Server Error ({'x' * 200}...)"


def test_unit_empty_error_body():
    with mock_client(lambda request: httpx.Response(504)) as client:
        with pytest.raises(APIError) as caught:
            client.me()
    assert caught.value.message == "Gateway Timeout"


def test_unit_json_error_without_code_has_no_code():
    with mock_client(lambda request: httpx.Response(500, json={"error": "boom"})) as client:
        with pytest.raises(APIError) as caught:
            client.me()
    assert caught.value.code is None


def test_unit_retry_after_as_http_date():
    clock = FakeClock()
    clock.now = datetime(2030, 1, 1, 12, 0, 0, tzinfo=UTC).timestamp()
    later = format_datetime(datetime(2030, 1, 1, 12, 0, 30, tzinfo=UTC), usegmt=True)
    with mock_client(lambda request: error(429, "TOO_MANY_REQUESTS", **{"Retry-After": later}), clock=clock) as client:
        with pytest.raises(RateLimited) as caught:
            client.sign_in("ada@example.com", "password123")
    assert caught.value.retry_after == 30


@pytest.mark.parametrize("header", ["soon", "-5", "1.5"])
def test_unit_retry_after_unreadable_is_none(header):
    with mock_client(lambda request: error(503, "AUTH_UNAVAILABLE", **{"Retry-After": header})) as client:
        with pytest.raises(ServiceUnavailable) as caught:
            client.me()
    assert caught.value.retry_after is None


def test_unit_success_body_not_json_raises_decode_error():
    with mock_client(lambda request: httpx.Response(200, text="<html>login page</html>"), jwt="a.b.c") as client:
        with pytest.raises(DecodeError, match="me response"):
            client.me()


def test_unit_success_body_wrong_shape_raises_decode_error():
    body = {"events": [{"id": "one", "type": "t", "data": 1, "created_at": "2030-01-01T00:00:00Z"}], "next_cursor": None}
    with mock_client(lambda request: httpx.Response(200, json=body), jwt="a.b.c") as client:
        with pytest.raises(DecodeError, match="events response"):
            client.events_page()


def test_unit_token_expired_twice_retries_only_once():
    paths = []

    def handler(request: httpx.Request) -> httpx.Response:
        paths.append(request.url.path)
        if request.url.path == "/api/auth/token":
            return httpx.Response(200, json={"token": make_jwt({"exp": 4_000_000_000})})
        return error(401, "TOKEN_EXPIRED", "token has expired")

    with mock_client(handler, token="session", jwt=make_jwt({"exp": 4_000_000_000})) as client:
        with pytest.raises(AuthenticationError, match="TOKEN_EXPIRED"):
            client.me()
    assert paths == ["/me", "/api/auth/token", "/me"]


def test_unit_invalid_token_is_not_refreshed():
    paths = []

    def handler(request: httpx.Request) -> httpx.Response:
        paths.append(request.url.path)
        return error(401, "INVALID_TOKEN", "bad signature")

    with mock_client(handler, token="session", jwt=make_jwt({"exp": 4_000_000_000})) as client:
        with pytest.raises(AuthenticationError):
            client.me()
    assert paths == ["/me"]


def test_unit_requests_never_carry_cookies():
    cookies = []

    def handler(request: httpx.Request) -> httpx.Response:
        cookies.append(request.headers.get("cookie"))
        body = {"success": True} if request.url.path.endswith("/sign-out") else signed_in_body()
        return httpx.Response(200, json=body, headers={"set-cookie": "better-auth.session_token=x; Path=/"})

    with mock_client(handler) as client:
        client.sign_in("ada@example.com", "password123")
        client.sign_out()
    assert cookies == [None, None]


def test_unit_sign_out_sends_session_token_as_bearer():
    seen = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers.get("authorization"))
        return httpx.Response(200, json={"success": True})

    with mock_client(handler, token="session-token") as client:
        client.sign_out()
    assert seen == ["Bearer session-token"]


@pytest.mark.parametrize(
    ("token", "expected"),
    [
        (make_jwt({"exp": 1_900_000_000}), 1_900_000_000),
        (make_jwt({"exp": 1_900_000_000.5}), 1_900_000_000.5),
        (make_jwt({"sub": "no exp"}), None),
        (make_jwt({"exp": "tomorrow"}), None),
        (make_jwt({"exp": True}), None),
        (make_jwt(["not", "an", "object"]), None),
        ("only.two", None),
        ("a.!!!.c", None),
        ("a.bm90IGpzb24.c", None),
    ],
)
def test_unit_jwt_expiry(token, expected):
    assert jwt_expiry(token) == expected
