"""Property-based tests of the decoders that read untrusted input, called in-process.

The contract of every decoder here: for any input it returns a value or raises its documented
error (ServiceError for request bodies, CursorError for cursors, ValueError or UnusableKeyError
for JWKS documents), and nothing else.
"""

from __future__ import annotations

import asyncio
import json
import string
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, assume, example, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from starlette.requests import Request

from aibrain.api.bodies import EventIn, check_event_type, check_json_media_type, decode_event, json_depth, read_body
from aibrain.api.cursor import CursorError, decode_cursor, encode_cursor
from aibrain.api.keys import ParsedKeySet, UnusableKeyError, VerificationKey, parse_key, parse_key_set
from aibrain.api.storage import user_dir_name
from aibrain.auth.validation import SIGN_IN_FIELDS, SIGN_UP_FIELDS, UNDEFINED, is_email, parse_body, validate
from aibrain.errors import ServiceError

PROPERTY_SETTINGS = hypothesis_settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture]
)
MAX_DEPTH = 64
MAX_TYPE_LENGTH = 128
REQUEST_ERROR_STATUSES = {400, 413, 415, 422}

json_scalars = st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | st.floats(allow_nan=False, allow_infinity=False) | st.text()
json_values = st.recursive(
    json_scalars,
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=8), children, max_size=5),
    max_leaves=30,
)
# Bytes that look like JSON often enough to reach the deeper branches of the decoders.
json_like_bytes = st.one_of(
    st.binary(max_size=300),
    st.text(alphabet='{}[]":,.-+eE0123456789 \\nultrfasNIy\ud800abc', max_size=200).map(
        lambda text: text.encode("utf-8", "surrogatepass")
    ),
    json_values.map(lambda value: json.dumps(value).encode()),
    st.builds(lambda t, d: json.dumps({"type": t, "data": d}).encode(), st.text(max_size=20), json_values),
)


def reference_depth(value: Any) -> int:
    """Count nesting the obvious, recursive way; only used on the small values hypothesis builds."""
    if isinstance(value, list):
        return 1 + max((reference_depth(item) for item in value), default=0)
    if isinstance(value, dict):
        return 1 + max((reference_depth(item) for item in value.values()), default=0)
    return 0


def assert_request_error(error: ServiceError) -> None:
    assert error.status in REQUEST_ERROR_STATUSES, (error.status, error.code)
    assert error.code.isupper()
    assert error.message


# Events API request bodies


@PROPERTY_SETTINGS
@given(json_like_bytes)
@example(b'{"type":"t","data":NaN}')
@example(b'{"type":"t","data":"\\ud800"}')
@example(b"[" * 100_000)
@example(b'{"type":"t","data":1e999}')
def test_decode_event_raises_only_service_error(body: bytes) -> None:
    try:
        event = decode_event(body, max_depth=MAX_DEPTH, max_type_length=MAX_TYPE_LENGTH)
    except ServiceError as error:
        assert_request_error(error)
        return

    assert isinstance(event, EventIn)
    assert 1 <= len(event.type) <= MAX_TYPE_LENGTH
    assert event.type.isprintable()
    # What the API stores must be strict JSON again: no NaN, no lone surrogates.
    json.loads(msgspec.json.encode(event.data).decode("utf-8", "strict"), parse_constant=_reject_constant)


def _reject_constant(name: str) -> None:
    raise AssertionError(f"stored data contains {name}")


@PROPERTY_SETTINGS
@given(json_values, st.text(alphabet=string.ascii_letters + string.digits + " _-", min_size=1, max_size=MAX_TYPE_LENGTH))
def test_decode_event_keeps_valid_events(data: Any, event_type: str) -> None:
    assume(reference_depth(data) + 1 <= MAX_DEPTH)
    body = json.dumps({"type": event_type, "data": data}).encode()

    event = decode_event(body, max_depth=MAX_DEPTH, max_type_length=MAX_TYPE_LENGTH)

    assert event.type == event_type
    assert msgspec.json.decode(msgspec.json.encode(event.data)) == msgspec.json.decode(json.dumps(data).encode())


@PROPERTY_SETTINGS
@given(json_values)
def test_json_depth_matches_recursive_count(value: Any) -> None:
    assert json_depth(json.dumps(value).encode()) == reference_depth(value)


@PROPERTY_SETTINGS
@given(st.binary(max_size=500))
def test_json_depth_never_raises(body: bytes) -> None:
    """Malformed JSON may get any depth (the decoder rejects it later) but must not raise."""
    assert isinstance(json_depth(body), int)


@PROPERTY_SETTINGS
@given(st.text(max_size=200), st.integers(1, 300))
def test_check_event_type_raises_only_service_error(value: str, max_length: int) -> None:
    try:
        check_event_type(value, max_length)
    except ServiceError as error:
        assert error.status == 422
        return
    assert 1 <= len(value) <= max_length


def _request(headers: list[tuple[bytes, bytes]], chunks: Sequence[bytes] = ()) -> Request:
    messages = [{"type": "http.request", "body": chunk, "more_body": True} for chunk in chunks]
    messages.append({"type": "http.request", "body": b"", "more_body": False})

    async def receive() -> dict[str, Any]:
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    scope = {"type": "http", "method": "POST", "path": "/events", "headers": headers, "query_string": b""}
    return Request(scope, receive)


@PROPERTY_SETTINGS
@given(st.binary(max_size=80))
@example(b"application/json; charset=")
@example(b'application/json; charset="utf-8')
@example(b"\xff\xfe")
def test_check_media_type_raises_only_service_error(value: bytes) -> None:
    try:
        check_json_media_type(_request([(b"content-type", value)]))
    except ServiceError as error:
        assert error.status == 415


@PROPERTY_SETTINGS
@given(
    st.lists(st.binary(max_size=64), max_size=8),
    st.integers(1, 300),
    st.none() | st.text(alphabet="0123456789-+ e.x", max_size=12),
)
@example([b"a" * 10], 5, None)
@example([b"a"], 5, "99999999999999999999999")
def test_read_body_raises_only_service_error(chunks: list[bytes], limit: int, declared: str | None) -> None:
    headers = [] if declared is None else [(b"content-length", declared.encode())]
    total = sum(len(chunk) for chunk in chunks)

    try:
        body = asyncio.run(read_body(_request(headers, chunks), limit))
    except ServiceError as error:
        assert error.status in (400, 413)
        if error.status == 413:
            assert total > limit or (declared is not None and declared.isdigit() and int(declared) > limit)
        return

    assert body == b"".join(chunks)
    assert len(body) <= limit


# Cursors


@PROPERTY_SETTINGS
@given(st.text(max_size=200))
@example("W10")
@example("WyIyMDI2LTAxLTAxVDAwOjAwOjAwLjAwMFoiLCAtMV0")
def test_decode_cursor_raises_only_cursor_error(cursor: str) -> None:
    try:
        created_at, event_id = decode_cursor(cursor)
    except CursorError:
        return
    assert encode_cursor(created_at, event_id)


@PROPERTY_SETTINGS
@given(st.datetimes(timezones=st.none()), st.integers(1, 2**63 - 1))
def test_cursor_round_trip(moment: Any, event_id: int) -> None:
    created_at = moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
    assume(len(created_at) == 24)

    assert decode_cursor(encode_cursor(created_at, event_id)) == (created_at, event_id)


# JWKS documents


@PROPERTY_SETTINGS
@given(json_like_bytes)
@example(b'{"keys":[42, null, "x", {"kty":"RSA"}, {"kty":"RSA","n":"!!","e":"AQAB"}, {"kty":"EC","crv":"P-256"}]}')
@example(b'{"keys":[{"kty":"OKP","crv":"Ed25519","x":""}, {"kty":"oct","k":"c2VjcmV0"}]}')
def test_parse_key_set_raises_only_value_error(document: bytes) -> None:
    try:
        parsed = parse_key_set(document)
    except ValueError:
        return
    assert isinstance(parsed, ParsedKeySet)


jwk_like = st.fixed_dictionaries(
    {"kty": st.sampled_from(["RSA", "EC", "OKP", "oct", "AKP", ""])},
    optional={
        "alg": st.sampled_from(["RS256", "PS256", "ES256", "EdDSA", "HS256", "none", ""]) | st.none() | st.integers(),
        "crv": st.sampled_from(["P-256", "P-384", "Ed25519", "X25519", "secp256k1"]) | st.integers(),
        "x": st.text(max_size=60) | st.integers(),
        "y": st.text(max_size=60),
        "n": st.text(max_size=60) | st.integers(),
        "e": st.sampled_from(["AQAB", "", "AA"]) | st.text(max_size=8),
        "kid": st.text(max_size=300) | st.integers() | st.none(),
        "use": st.sampled_from(["sig", "enc"]) | st.integers(),
        "key_ops": st.lists(st.text(max_size=8), max_size=3) | st.text(max_size=8),
    },
)


@PROPERTY_SETTINGS
@given(jwk_like | json_values)
def test_parse_key_raises_only_unusable_key_error(jwk: Any) -> None:
    try:
        key = parse_key(jwk)
    except UnusableKeyError:
        return
    assert isinstance(key, VerificationKey)


# User directories


@PROPERTY_SETTINGS
@given(st.text(min_size=1, max_size=300))
@example(".")
@example("..")
@example("../../etc")
@example("a/../../b")
@example("C:\\Windows")
@example("\x00")
@example("\ud800")
@example("h-" + "0" * 64)
def test_user_dir_stays_inside_users_dir(tmp_path: Path, sub: str) -> None:
    users_dir = tmp_path / "users"
    name = user_dir_name(sub)

    assert name not in ("", ".", "..")
    assert not set(name) & {"/", "\\", "\x00", ":"}
    assert (users_dir / name).resolve().parent == users_dir.resolve()
    assert len(name.encode("utf-8")) <= 255


@PROPERTY_SETTINGS
@given(st.text(min_size=1, max_size=80), st.text(min_size=1, max_size=80))
@example("alice", "h-" + "0" * 64)
@example("a" * 64, "a" * 65)
def test_user_dirs_of_different_subs_differ(first: str, second: str) -> None:
    assume(first != second)

    assert user_dir_name(first) != user_dir_name(second)


@pytest.mark.xfail(
    strict=True,
    reason="storage.user_dir_name uses a plain sub as the directory name as-is, so subs that differ only "
    "in letter case (Alice, alice) share one directory on a case-insensitive file system (macOS, Windows)",
)
@PROPERTY_SETTINGS
@given(st.text(alphabet=string.ascii_letters + string.digits + "_-", min_size=1, max_size=64))
@example("Alice")
def test_user_dirs_differ_ignoring_case(sub: str) -> None:
    """The rule: distinct subs must map to names that still differ after case folding, because
    several file systems compare names case-insensitively. Better Auth ids are 32 mixed-case
    letters and digits, so ids differing only in case are possible, though unlikely.
    """
    for other in {sub.lower(), sub.upper(), sub.swapcase()} - {sub}:
        assert user_dir_name(sub).casefold() != user_dir_name(other).casefold()


# Auth service request bodies


@PROPERTY_SETTINGS
@given(
    st.none() | st.sampled_from(["application/json", "application/x-www-form-urlencoded", "text/plain", "application/ld+json", ""]) | st.text(max_size=40),
    json_like_bytes | st.text(max_size=200).map(lambda text: text.encode("utf-8", "surrogatepass")),
)
@example("application/x-www-form-urlencoded", b"email=%ff%fe&password=%00")
@example("application/x-www-form-urlencoded", b"\xff\xfe")
def test_parse_body_raises_only_service_error(content_type: str | None, raw: bytes) -> None:
    try:
        parse_body(content_type, raw)
    except ServiceError as error:
        assert error.status in (400, 415)


@pytest.mark.parametrize("depth", [1000, 100_000])
def test_parse_body_deep_json_raises_service_error(depth: int) -> None:
    with pytest.raises(ServiceError) as caught:
        parse_body("application/json", b"[" * depth + b"]" * depth)

    assert caught.value.status == 400


auth_bodies = st.one_of(
    json_values,
    st.fixed_dictionaries(
        {},
        optional={
            "name": json_values,
            "email": st.emails().map(str) | json_values,
            "password": st.text(max_size=200) | json_values,
            "image": json_values,
            "callbackURL": json_values,
            "rememberMe": json_values,
        },
    ),
)


@PROPERTY_SETTINGS
@given(auth_bodies | st.just(UNDEFINED), st.sampled_from([SIGN_UP_FIELDS, SIGN_IN_FIELDS]), st.booleans())
def test_validate_raises_only_service_error(body: Any, fields: Any, email_format: bool) -> None:
    try:
        validated = validate(body, fields, record_check=True, email_format=email_format)
    except ServiceError as error:
        assert error.status == 400
        assert error.code == "VALIDATION_ERROR"
        return

    assert isinstance(validated, dict)
    for name, expected, required in fields:
        if required:
            assert isinstance(validated[name], str) or expected != "string"


@PROPERTY_SETTINGS
@given(st.text(max_size=120))
@example("jac\u212a@example.com")
@example("jack@ex\u0430mple.com")
def test_is_email_accepts_only_ascii(value: str) -> None:
    if is_email(value):
        assert value.isascii()
        assert value == value.strip()
