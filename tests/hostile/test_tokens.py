"""Forged and misleading bearer tokens against the events API running as a real process.

Covers unsigned tokens, algorithm confusion (HMAC keyed with the public key, a different
asymmetric algorithm than the key's), issuer and audience checks and clock-skew handling.
Every rejection must be a 401 with a JSON error body and a Bearer challenge, and must not
create the user's directory.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import serialization

from tests.fixtures.issuer import StubIssuer, b64url, generate_key
from tests.hostile.conftest import ApiFactory, ApiUnderTest
from tests.hostile.support import assert_json_error, assert_unauthorized, bearer, claims, user_entries

EVENT = {"type": "note", "data": {"text": "hello"}}


@pytest.fixture(scope="module")
def api(api_factory: ApiFactory) -> ApiUnderTest:
    return api_factory(keys=[("RS256", "rsa-1"), ("PS256", "ps-1"), ("ES256", "es-1"), ("EdDSA", "ed-1")])


@pytest.fixture(scope="module")
def http(api: ApiUnderTest) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=api.url, timeout=10.0) as client:
        yield client


def compact(header: Any, payload: Any, signature: bytes = b"") -> str:
    """Build a compact JWS from JSON values and raw signature bytes, without signing."""
    return f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(payload).encode())}.{b64url(signature)}"


def hmac_token(header: dict[str, Any], payload: dict[str, Any], secret: bytes) -> str:
    """Sign a token with HMAC, as an attacker holding only the public key would."""
    digests = {"HS256": hashlib.sha256, "HS384": hashlib.sha384, "HS512": hashlib.sha512}
    signing_input = f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(payload).encode())}"
    mac = hmac.new(secret, signing_input.encode(), digests[header["alg"]]).digest()
    return f"{signing_input}.{b64url(mac)}"


def assert_rejected_everywhere(http: httpx.Client, api: ApiUnderTest, token: str, sub: str) -> None:
    """Send the token to GET /me and POST /events; both must be 401 and leave no user directory."""
    assert_unauthorized(http.get("/me", headers=bearer(token)))
    assert_unauthorized(http.post("/events", headers=bearer(token), json=EVENT))
    assert_unauthorized(http.get("/events", headers=bearer(token)))
    assert sub not in user_entries(api.data_dir)


# Unsigned tokens


@pytest.mark.parametrize(
    "header",
    [
        {"alg": "none"},
        {"alg": "None"},
        {"alg": "NONE"},
        {"alg": "none", "kid": "rsa-1"},
        {"kid": "rsa-1"},
        {},
        {"alg": ""},
        {"alg": None, "kid": "rsa-1"},
    ],
    ids=["none", "None", "NONE", "none-with-kid", "no-alg", "empty-header", "empty-alg", "null-alg"],
)
def test_unsigned_token_rejected(http: httpx.Client, api: ApiUnderTest, header: dict[str, Any]) -> None:
    sub = "unsigned-user"
    token = compact(header, claims(api.issuer, sub))

    assert_rejected_everywhere(http, api, token, sub)


def test_unsigned_token_with_stripped_real_signature_rejected(http: httpx.Client, api: ApiUnderTest) -> None:
    """A real token whose header is swapped for alg none keeps its signature; it must still fail."""
    sub = "stripped-user"
    real = api.issuer.sign(claims(api.issuer, sub), "rsa-1")
    _, payload, signature = real.split(".")
    header = b64url(json.dumps({"alg": "none", "kid": "rsa-1"}).encode())

    assert_rejected_everywhere(http, api, f"{header}.{payload}.", sub)
    assert_rejected_everywhere(http, api, f"{header}.{payload}.{signature}", sub)


# Algorithm confusion


def _public_key_encodings(issuer: StubIssuer, kid: str) -> dict[str, bytes]:
    """Return every encoding of a public key an HMAC-confusion attacker might use as the secret."""
    public_jwk = next(jwk for jwk in issuer.published if jwk.get("kid") == kid)
    public_key = issuer.private_keys[kid].public_key
    pem_spki = public_key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    materials = {
        "jwk-json": json.dumps(public_jwk).encode(),
        "jwk-json-compact": json.dumps(public_jwk, separators=(",", ":")).encode(),
        "jwks-json": json.dumps({"keys": issuer.published}).encode(),
        "pem": pem_spki,
        "pem-no-newline": pem_spki.rstrip(b"\n"),
        "der": public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo),
    }
    if public_jwk["kty"] == "RSA":
        materials["pem-pkcs1"] = public_key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.PKCS1)
        materials["raw-modulus"] = public_key.public_numbers().n.to_bytes(256, "big")
        materials["jwk-n-text"] = public_jwk["n"].encode()
    else:
        materials["raw"] = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        materials["jwk-x-text"] = public_jwk["x"].encode()
    return materials


@pytest.mark.parametrize("kid", ["rsa-1", "ed-1"])
@pytest.mark.parametrize("alg", ["HS256", "HS384", "HS512"])
def test_hmac_keyed_with_public_key_rejected(http: httpx.Client, api: ApiUnderTest, kid: str, alg: str) -> None:
    sub = "hmac-user"
    for name, secret in _public_key_encodings(api.issuer, kid).items():
        token = hmac_token({"alg": alg, "kid": kid, "typ": "JWT"}, claims(api.issuer, sub), secret)

        response = http.get("/me", headers=bearer(token))
        assert response.status_code == 401, f"{alg} keyed with the {name} of {kid}: {response.text}"
        assert_unauthorized(response)
    assert sub not in user_entries(api.data_dir)


@pytest.mark.parametrize(
    ("claimed_alg", "signing_kid", "signing_alg", "named_kid"),
    [
        ("PS256", "rsa-1", "PS256", "rsa-1"),  # a real PSS signature by the RS256 key
        ("RS256", "ps-1", "RS256", "ps-1"),  # a real PKCS#1 v1.5 signature by the PS256 key
        ("ES256", "es-1", "ES256", "rsa-1"),  # an EC signature presented under an RSA kid
        ("EdDSA", "ed-1", "EdDSA", "rsa-1"),
        ("RS256", "rsa-1", "RS256", "ed-1"),  # an RSA signature presented under an Ed25519 kid
        ("ES256", "es-1", "ES256", "ed-1"),
    ],
)
def test_token_alg_other_than_keys_rejected(
    http: httpx.Client, api: ApiUnderTest, claimed_alg: str, signing_kid: str, signing_alg: str, named_kid: str
) -> None:
    sub = "wrong-alg-user"
    header = {"alg": claimed_alg, "kid": named_kid}
    payload = json.dumps(claims(api.issuer, sub)).encode()
    token = StubIssuer.sign_raw(header, payload, api.issuer.private_keys[signing_kid], signing_alg)

    assert_rejected_everywhere(http, api, token, sub)


@pytest.mark.parametrize("alg", ["RS384", "RS512", "PS384", "PS512", "ES384", "ES512", "Ed25519", "rs256"])
def test_alg_outside_allow_list_rejected(http: httpx.Client, api: ApiUnderTest, alg: str) -> None:
    """Algorithms outside RS256, PS256, ES256 and EdDSA are rejected even with a real key behind them."""
    sub = "other-alg-user"
    signing = {"RS384": "RS384", "RS512": "RS512", "PS384": "PS384", "PS512": "PS512", "rs256": "RS256"}
    header = {"alg": alg, "kid": "rsa-1"}
    payload = json.dumps(claims(api.issuer, sub)).encode()
    if alg in signing:
        token = StubIssuer.sign_raw(header, payload, api.issuer.private_keys["rsa-1"], signing[alg])
    else:
        token = compact(header, claims(api.issuer, sub), b"\x00" * 64)

    assert_rejected_everywhere(http, api, token, sub)


def test_embedded_jwk_header_not_trusted(http: httpx.Client, api: ApiUnderTest) -> None:
    """A token that brings its own public key (jwk, jku, x5u) must not be verified with it."""
    attacker = generate_key("RS256")
    sub = "embedded-key-user"
    payload = json.dumps(claims(api.issuer, sub)).encode()
    for header in (
        {"alg": "RS256", "jwk": attacker.as_dict(private=False)},
        {"alg": "RS256", "kid": "rsa-1", "jwk": attacker.as_dict(private=False)},
        {"alg": "RS256", "jku": api.issuer.jwks_url},
    ):
        token = StubIssuer.sign_raw(header, payload, attacker, "RS256")
        assert_rejected_everywhere(http, api, token, sub)


# Issuer, audience and subject


@pytest.mark.parametrize(
    "overrides",
    [
        {"aud": "http://127.0.0.1:1"},
        {"iss": "http://127.0.0.1:1"},
        {"aud": ...},
        {"iss": ...},
        {"aud": ["http://127.0.0.1:1", "https://other.example"]},
        {"aud": []},
        {"aud": None},
        {"iss": None},
        {"aud": 1},
        {"sub": ...},
        {"sub": ""},
        {"sub": None},
        {"sub": 123},
        {"sub": ["a"]},
    ],
    ids=[
        "foreign-aud",
        "foreign-iss",
        "no-aud",
        "no-iss",
        "aud-list-without-ours",
        "aud-empty-list",
        "aud-null",
        "iss-null",
        "aud-number",
        "no-sub",
        "empty-sub",
        "null-sub",
        "number-sub",
        "list-sub",
    ],
)
def test_claims_other_than_ours_rejected(http: httpx.Client, api: ApiUnderTest, overrides: dict[str, Any]) -> None:
    token = api.issuer.sign(claims(api.issuer, "claims-user", **overrides), "rsa-1")

    assert_rejected_everywhere(http, api, token, "claims-user")


def test_audience_list_containing_ours_accepted(http: httpx.Client, api: ApiUnderTest) -> None:
    audience = ["https://other.example", api.issuer.url]
    token = api.issuer.sign(claims(api.issuer, "aud-list-user", aud=audience), "rsa-1")

    response = http.get("/me", headers=bearer(token))

    assert response.status_code == 200, response.text
    assert response.json()["id"] == "aud-list-user"


def test_issuer_with_one_trailing_slash_accepted(http: httpx.Client, api: ApiUnderTest) -> None:
    """The rule: one trailing slash on iss or aud is ignored, so `http://host:port/` matches."""
    token = api.issuer.sign(claims(api.issuer, "slash-user", iss=api.issuer.url + "/", aud=api.issuer.url + "/"), "rsa-1")

    assert http.get("/me", headers=bearer(token)).status_code == 200


@pytest.mark.parametrize("suffix", ["//", "/x", "/api/auth", "?", "#", " ", "."])
def test_issuer_with_other_suffix_rejected(http: httpx.Client, api: ApiUnderTest, suffix: str) -> None:
    """Only exactly one trailing slash is ignored; a path, a second slash or a dot is another issuer."""
    token = api.issuer.sign(claims(api.issuer, "suffix-user", iss=api.issuer.url + suffix), "rsa-1")

    assert_unauthorized(http.get("/me", headers=bearer(token)))


def test_issuer_with_other_case_rejected(http: httpx.Client, api: ApiUnderTest) -> None:
    token = api.issuer.sign(claims(api.issuer, "case-user", iss=api.issuer.url.upper()), "rsa-1")

    assert_unauthorized(http.get("/me", headers=bearer(token)))


# Clock skew (default leeway 30 s)


@pytest.mark.parametrize(
    "offsets",
    [{"iat": 20}, {"nbf": 20}, {"exp": -5}, {"iat": 20, "nbf": 20}],
    ids=["iat-in-20s", "nbf-in-20s", "expired-5s-ago", "iat-and-nbf-in-20s"],
)
def test_skew_within_leeway_accepted(http: httpx.Client, api: ApiUnderTest, offsets: dict[str, int]) -> None:
    now = int(time.time())
    token = api.issuer.sign(claims(api.issuer, "skew-user", **{name: now + delta for name, delta in offsets.items()}), "rsa-1")

    response = http.get("/me", headers=bearer(token))

    assert response.status_code == 200, response.text


@pytest.mark.parametrize(
    ("overrides", "code"),
    [
        ({"exp": -120}, "TOKEN_EXPIRED"),
        ({"nbf": 600}, "TOKEN_NOT_YET_VALID"),
        ({"iat": 600}, "TOKEN_NOT_YET_VALID"),
        ({"exp": -31 - 60}, "TOKEN_EXPIRED"),
    ],
    ids=["expired-120s-ago", "nbf-in-600s", "iat-in-600s", "expired-91s-ago"],
)
def test_skew_beyond_leeway_rejected(http: httpx.Client, api: ApiUnderTest, overrides: dict[str, int], code: str) -> None:
    now = int(time.time())
    token = api.issuer.sign(claims(api.issuer, "late-user", **{name: now + delta for name, delta in overrides.items()}), "rsa-1")

    assert_rejected_everywhere(http, api, token, "late-user")
    assert_unauthorized(http.get("/me", headers=bearer(token)), code)


def test_token_without_exp_rejected(http: httpx.Client, api: ApiUnderTest) -> None:
    token = api.issuer.sign(claims(api.issuer, "no-exp-user", exp=...), "rsa-1")

    assert_rejected_everywhere(http, api, token, "no-exp-user")


def test_accepted_token_creates_only_its_own_directory(http: httpx.Client, api: ApiUnderTest) -> None:
    """After every rejection above, the one accepted POST is the only user directory on disk."""
    token = api.issuer.sign(claims(api.issuer, "real-user"), "rsa-1")

    response = http.post("/events", headers=bearer(token), json=EVENT)

    assert response.status_code == 201, response.text
    assert user_entries(api.data_dir) == ["real-user"]


def test_unknown_route_answers_json(http: httpx.Client) -> None:
    assert_json_error(http.get("/nope"), 404, "NOT_FOUND")
    assert_json_error(http.delete("/events"), 405, "METHOD_NOT_ALLOWED")


def test_api_log_has_no_traceback(api: ApiUnderTest) -> None:
    log = api.service.log_text()

    assert "Traceback" not in log
    assert " ERROR " not in log


