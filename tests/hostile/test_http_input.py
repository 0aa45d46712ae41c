"""Hostile request bodies and headers, and every request limit of the events API, on real processes.

Each limit is a setting: one API runs with the defaults, another with small limits, and both
must accept a request at the limit and reject one just beyond it with a JSON error (never 500).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.hostile.conftest import ApiFactory, ApiUnderTest
from tests.hostile.support import (
    assert_json_error,
    assert_unauthorized,
    bearer,
    claims,
    parse_raw_response,
    raw_request,
    user_entries,
)

DEFAULT_MAX_BODY = 1_048_576
DEFAULT_MAX_DEPTH = 64
DEFAULT_MAX_TYPE = 128
DEFAULT_MAX_PAGE = 500
DEFAULT_PAGE = 50
DEFAULT_MAX_TOKEN = 16_384

SMALL = {"body": 2048, "depth": 4, "type": 8, "page": 3, "default_page": 2, "token": 1200}


@pytest.fixture(scope="module")
def api(api_factory: ApiFactory) -> ApiUnderTest:
    return api_factory()


@pytest.fixture(scope="module")
def small_api(api_factory: ApiFactory) -> ApiUnderTest:
    return api_factory(
        AIBRAIN_MAX_BODY_BYTES=str(SMALL["body"]),
        AIBRAIN_MAX_JSON_DEPTH=str(SMALL["depth"]),
        AIBRAIN_MAX_TYPE_LENGTH=str(SMALL["type"]),
        AIBRAIN_MAX_PAGE_SIZE=str(SMALL["page"]),
        AIBRAIN_DEFAULT_PAGE_SIZE=str(SMALL["default_page"]),
        AIBRAIN_MAX_TOKEN_BYTES=str(SMALL["token"]),
    )


def token_for(api: ApiUnderTest, user: str = "http-user", **extra: Any) -> str:
    return api.issuer.sign(claims(api.issuer, user, **extra), "rsa-1")


@pytest.fixture(scope="module")
def http(api: ApiUnderTest) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=api.url, headers=bearer(token_for(api)), timeout=30.0) as client:
        yield client


@pytest.fixture(scope="module")
def small_http(small_api: ApiUnderTest) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=small_api.url, headers=bearer(token_for(small_api)), timeout=30.0) as client:
        yield client


def post_raw(client: httpx.Client, body: bytes | str, content_type: str = "application/json") -> httpx.Response:
    content = body.encode() if isinstance(body, str) else body
    return client.post("/events", content=content, headers={"content-type": content_type})


def nested(depth: int, opener: str = "[", closer: str = "]") -> str:
    return opener * depth + closer * depth


def event_body(data: str, event_type: str = "t") -> str:
    return '{"type":%s,"data":%s}' % (json.dumps(event_type), data)


# Deep JSON


@pytest.mark.parametrize(
    "body",
    [
        event_body(nested(100_000)),
        event_body('{"a":' * 100_000 + "1" + "}" * 100_000),
        event_body(nested(150)),
        nested(100_000),
        "{" * 100_000,
        event_body("[" * 100_000),
    ],
    ids=["array-100000", "object-100000", "array-150", "whole-body-100000", "unclosed-objects", "unclosed-arrays"],
)
def test_deep_json_rejected(http: httpx.Client, body: str) -> None:
    response = post_raw(http, body)

    assert_json_error(response, 400, "INVALID_JSON")
    assert http.get("/health").status_code == 200


def test_depth_at_limit_accepted(http: httpx.Client) -> None:
    """The outer object counts as one level, so `data` may nest 63 arrays under the default 64."""
    assert post_raw(http, event_body(nested(DEFAULT_MAX_DEPTH - 1))).status_code == 201
    assert_json_error(post_raw(http, event_body(nested(DEFAULT_MAX_DEPTH))), 400, "INVALID_JSON")


def test_brackets_inside_strings_not_counted(http: httpx.Client) -> None:
    data = json.dumps("[{" * 5000 + '\\"[')

    response = post_raw(http, event_body(data))

    assert response.status_code == 201, response.text


# Non-standard JSON


@pytest.mark.parametrize(
    "body",
    [
        event_body("NaN"),
        event_body("-Infinity"),
        event_body("Infinity"),
        event_body("[1, NaN]"),
        event_body('"\\ud800"'),
        event_body('"\\udc00x"'),
        event_body('{"\\ud800": 1}'),
        '{"type":"\\ud800","data":1}',
        event_body("01"),
        event_body("1."),
        event_body("'single'"),
        event_body("[1,]"),
        event_body("undefined"),
        '{"type":"t","data":1} trailing',
        '{"type":"t","data":1,}',
        "",
        "   ",
        '\ufeff{"type":"t","data":1}',
    ],
    ids=[
        "nan",
        "minus-infinity",
        "infinity",
        "nan-in-array",
        "lone-high-surrogate",
        "lone-low-surrogate",
        "lone-surrogate-key",
        "lone-surrogate-type",
        "leading-zero",
        "trailing-dot",
        "single-quotes",
        "trailing-comma-array",
        "undefined",
        "trailing-text",
        "trailing-comma-object",
        "empty-body",
        "blank-body",
        "byte-order-mark",
    ],
)
def test_non_standard_json_rejected(http: httpx.Client, body: str) -> None:
    assert_json_error(post_raw(http, body), 400, "INVALID_JSON")


@pytest.mark.parametrize("raw", [b'{"type":"t","data":"\xff"}', b'{"type":"t","data":"\xc3"}', b'{"type":"\xed\xa0\x80","data":1}'])
def test_invalid_utf8_rejected(http: httpx.Client, raw: bytes) -> None:
    assert_json_error(post_raw(http, raw), 400, "INVALID_JSON")


def test_duplicate_keys_last_wins(http: httpx.Client) -> None:
    """The documented rule: as in JavaScript's JSON.parse, the last value of a repeated key is kept."""
    response = post_raw(http, '{"type":"first","data":1,"type":"last","data":2}')

    assert response.status_code == 201, response.text
    assert response.json()["type"] == "last"
    assert response.json()["data"] == 2
    listed = http.get("/events", params={"type": "last"}).json()["events"]
    assert [event["data"] for event in listed] == [2]
    assert http.get("/events", params={"type": "first"}).json()["events"] == []


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ('{"type":1,"data":1}', "type"),
        ('{"type":null,"data":1}', "type"),
        ('{"type":["t"],"data":1}', "type"),
        ('{"type":true,"data":1}', "type"),
        ('{"data":1}', "type"),
        ('{"type":"t"}', "data"),
        ('{"type":"t","data":1,"extra":2}', "extra"),
        ('{"type":"","data":1}', "type"),
    ],
    ids=["type-number", "type-null", "type-array", "type-bool", "no-type", "no-data", "unknown-field", "empty-type"],
)
def test_wrong_field_rejected_naming_it(http: httpx.Client, body: str, field: str) -> None:
    body_json = assert_json_error(post_raw(http, body), 422, "VALIDATION_ERROR")

    assert field in body_json["message"]


@pytest.mark.parametrize("body", ["[]", '"text"', "1", "null", "true"])
def test_body_not_object_rejected(http: httpx.Client, body: str) -> None:
    assert_json_error(post_raw(http, body), 422, "VALIDATION_ERROR")


@pytest.mark.parametrize("data", ['"bare string"', "null", "0", "-0.0", "1e308", "[]", "{}", "true"])
def test_any_json_data_accepted(http: httpx.Client, data: str) -> None:
    """The documented rule: `data` may be any JSON value, bare strings and null included."""
    response = post_raw(http, event_body(data, "any-data"))

    assert response.status_code == 201, response.text
    assert response.json()["data"] == json.loads(data)


@pytest.mark.parametrize(
    "content_type",
    ["text/plain", "application/x-www-form-urlencoded", "application/json; charset=latin-1", "", "application/jsonx"],
)
def test_wrong_content_type_rejected(http: httpx.Client, content_type: str) -> None:
    assert_json_error(post_raw(http, event_body("1"), content_type), 415, "UNSUPPORTED_MEDIA_TYPE")


def test_listed_events_are_strict_json(http: httpx.Client) -> None:
    """Whatever was stored, GET /events returns RFC 8259 JSON: no NaN, no lone surrogates, valid UTF-8."""
    tricky = ['"\\u2028\\u2029"', '"\\u0000"', '"\\ud83d\\ude00"', "18446744073709551615", "-9223372036854775808", "1e-320", '"\\"\\\\/"']
    for data in tricky:
        assert post_raw(http, event_body(data, "strict")).status_code == 201

    response = http.get("/events", params={"type": "strict", "limit": 100})

    def reject_constant(name: str) -> None:
        raise AssertionError(f"non-standard JSON constant {name}")

    text = response.content.decode("utf-8", errors="strict")
    listed = json.loads(text, parse_constant=reject_constant)
    for event in listed["events"]:
        json.dumps(event["data"], allow_nan=False).encode("utf-8", errors="strict")
    assert sorted(json.dumps(event["data"]) for event in listed["events"]) == sorted(
        json.dumps(json.loads(data)) for data in tricky
    )


# Request body size


def test_declared_oversize_body_rejected_before_reading(api: ApiUnderTest) -> None:
    """The client sends only the head with Content-Length above the limit; the 413 must arrive anyway."""
    head = (
        "POST /events HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n"
        "Content-Type: application/json\r\nContent-Length: {length}\r\n\r\n"
    ).format(token=token_for(api, "oversize-user"), length=DEFAULT_MAX_BODY + 1)

    status, headers, body = parse_raw_response(raw_request(api.service.port, head.encode()))

    assert status == 413
    assert json.loads(body)["code"] == "BODY_TOO_LARGE"
    assert "oversize-user" not in user_entries(api.data_dir)


def test_body_at_limit_accepted(small_http: httpx.Client) -> None:
    padding = SMALL["body"] - len(event_body('""'))
    at_limit = event_body(json.dumps("x" * padding))
    assert len(at_limit) == SMALL["body"]

    assert post_raw(small_http, at_limit).status_code == 201
    beyond = event_body(json.dumps("x" * (padding + 1)))
    assert_json_error(post_raw(small_http, beyond), 413, "BODY_TOO_LARGE")


def test_chunked_oversize_body_rejected(small_api: ApiUnderTest) -> None:
    """A chunked body without Content-Length is counted while it streams; the terminating chunk never comes."""
    head = (
        "POST /events HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n"
        "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
    ).format(token=token_for(small_api, "chunked-user"))
    opening = b'{"type":"t","data":"'
    chunks = [b"%x\r\n%s\r\n" % (len(opening), opening)] + [b"%x\r\n%s\r\n" % (1024, b"z" * 1024)] * 8

    raw = raw_request(small_api.service.port, head.encode(), body_chunks=chunks)
    status, _headers, body = parse_raw_response(raw)

    assert status == 413
    assert json.loads(body)["code"] == "BODY_TOO_LARGE"
    assert "chunked-user" not in user_entries(small_api.data_dir)


def test_chunked_body_within_limit_accepted(small_http: httpx.Client) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"type":"chunked",'
        yield b'"data":"' + b"y" * 1000 + b'"}'

    response = small_http.post("/events", content=chunks(), headers={"content-type": "application/json"})

    assert response.status_code == 201, response.text


@pytest.mark.parametrize("length", ["-1", "abc", "1e3", "+5", " 5"])
def test_invalid_content_length_never_500(api: ApiUnderTest, length: str) -> None:
    head = (
        "POST /events HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n"
        "Content-Type: application/json\r\nContent-Length: {length}\r\nConnection: close\r\n\r\n"
    ).format(token=token_for(api), length=length)

    raw = raw_request(api.service.port, head.encode() + b'{"type":"t","data":1}')

    assert raw == b"" or 400 <= parse_raw_response(raw)[0] < 500


# Header size


def test_header_of_64_kib_rejected(api: ApiUnderTest) -> None:
    """Granian 2.8.9 reads request heads up to its HTTP/1 `max_buffer_size` (8192 + 4096 * 100 bytes)
    and responds 431 with an empty body beyond it. A 64 KiB header is far below that.
    """
    response = httpx.get(api.url + "/health", headers={"X-Padding": "a" * 65_536})

    assert response.status_code in (400, 413, 431)


def test_header_of_1_mib_rejected_by_granian(api: ApiUnderTest) -> None:
    """Granian responds 431 Request Header Fields Too Large with an empty body, not the JSON error body."""
    response = httpx.get(api.url + "/health", headers={"X-Padding": "a" * 1_048_576})

    assert response.status_code == 431
    assert httpx.get(api.url + "/health").status_code == 200


def test_many_headers_never_500(api: ApiUnderTest) -> None:
    headers = [(f"X-H{number}", "v") for number in range(2000)]

    response = httpx.get(api.url + "/me", headers=[*headers, ("Authorization", f"Bearer {token_for(api)}")])

    assert response.status_code in (200, 400, 413, 431)


# Token size


def _token_of_length(api: ApiUnderTest, length: int) -> str:
    """Return a valid token padded with a claim to exactly `length` characters, or one character more."""
    # Base64url makes the token grow by 4 characters per 3 bytes of claims; start just below the goal.
    padding = max(0, (length - len(token_for(api, "padded-user", pad=""))) * 3 // 4 - 8)
    while True:
        token = token_for(api, "padded-user", pad="p" * padding)
        if len(token) >= length:
            return token
        padding += 1


@pytest.mark.parametrize(("fixture", "limit"), [("api", DEFAULT_MAX_TOKEN), ("small_api", SMALL["token"])])
def test_token_size_limit(request: pytest.FixtureRequest, fixture: str, limit: int) -> None:
    api: ApiUnderTest = request.getfixturevalue(fixture)
    under = _token_of_length(api, limit - 3)
    over = _token_of_length(api, limit + 1)
    assert len(under) <= limit
    assert len(over) > limit

    assert httpx.get(api.url + "/me", headers=bearer(under)).status_code == 200
    assert_unauthorized(httpx.get(api.url + "/me", headers=bearer(over)), "INVALID_TOKEN")


# Event type length and characters


@pytest.mark.parametrize(("fixture", "limit"), [("http", DEFAULT_MAX_TYPE), ("small_http", SMALL["type"])])
def test_type_length_limit(request: pytest.FixtureRequest, fixture: str, limit: int) -> None:
    client: httpx.Client = request.getfixturevalue(fixture)

    assert client.post("/events", json={"type": "t" * limit, "data": 1}).status_code == 201
    assert_json_error(client.post("/events", json={"type": "t" * (limit + 1), "data": 1}), 422, "VALIDATION_ERROR")
    assert_json_error(client.get("/events", params={"type": "t" * (limit + 1)}), 400, "INVALID_QUERY")


def test_type_length_counts_characters(http: httpx.Client) -> None:
    """The limit counts code points, so 128 emoji (512 UTF-8 bytes) fit the default."""
    assert http.post("/events", json={"type": "\U0001f511" * DEFAULT_MAX_TYPE, "data": 1}).status_code == 201


@pytest.mark.parametrize(
    "event_type",
    ["a\nb", "a\tb", "a\x00b", "a\x7fb", "a\x85b", "a\u200bb", "a\u202eb", "\ufeffa", "a\ue000b", "a\u0378b", "a\u2028b"],
    ids=["newline", "tab", "nul", "delete", "next-line", "zero-width-space", "rtl-override", "bom", "private-use", "unassigned", "line-separator"],
)
def test_type_with_invisible_characters_rejected(http: httpx.Client, event_type: str) -> None:
    assert_json_error(http.post("/events", json={"type": event_type, "data": 1}), 422, "VALIDATION_ERROR")
    assert_json_error(http.get("/events", params={"type": event_type}), 400, "INVALID_QUERY")


@pytest.mark.parametrize("event_type", ["ключ", "日本語", "a b", "x'); DROP TABLE events;--", "🔑", "a/b\\c"])
def test_type_with_printable_characters_accepted(http: httpx.Client, event_type: str) -> None:
    response = http.post("/events", json={"type": event_type, "data": 1})

    assert response.status_code == 201, response.text
    assert [event["type"] for event in http.get("/events", params={"type": event_type}).json()["events"]] == [event_type]


# Page size


@pytest.mark.parametrize(
    ("fixture", "maximum", "default"),
    [("http", DEFAULT_MAX_PAGE, DEFAULT_PAGE), ("small_http", SMALL["page"], SMALL["default_page"])],
)
def test_page_size_limit(request: pytest.FixtureRequest, fixture: str, maximum: int, default: int) -> None:
    client: httpx.Client = request.getfixturevalue(fixture)
    for number in range(default + 1):
        assert client.post("/events", json={"type": "paged", "data": number}).status_code == 201

    by_default = client.get("/events", params={"type": "paged"}).json()
    assert len(by_default["events"]) == default
    assert by_default["next_cursor"] is not None
    assert client.get("/events", params={"type": "paged", "limit": maximum}).status_code == 200
    assert_json_error(client.get("/events", params={"limit": maximum + 1}), 400, "INVALID_QUERY")
    assert_json_error(client.get("/events", params={"limit": 0}), 400, "INVALID_QUERY")


# Depth as a setting


def test_depth_limit_setting(small_http: httpx.Client) -> None:
    depth = SMALL["depth"]

    assert post_raw(small_http, event_body(nested(depth - 1))).status_code == 201
    assert_json_error(post_raw(small_http, event_body(nested(depth))), 400, "INVALID_JSON")


def test_api_logs_have_no_traceback(api: ApiUnderTest, small_api: ApiUnderTest) -> None:
    for service in (api.service, small_api.service):
        log = service.log_text()
        assert "Traceback" not in log
        assert " ERROR " not in log
