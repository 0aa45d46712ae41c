"""Tests of TokenVerifier against a real JWKS served by the stub issuer."""

from __future__ import annotations

import asyncio
import base64
import hmac
import json
import logging
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from aibrain.api.jwks import JwksCache
from aibrain.api.tokens import AuthUnavailableError, Identity, TokenError, TokenVerifier
from tests.api.support import ORIGIN, FakeClock, claims_for
from tests.fixtures.issuer import StubIssuer, b64url


class VerifierHarness:
    """A TokenVerifier with its JwksCache and HTTP client on a private event loop."""

    def __init__(self, issuer: StubIssuer, clock: FakeClock, **options: Any) -> None:
        self.loop = asyncio.new_event_loop()
        self.client = httpx.AsyncClient()
        self.jwks = JwksCache(
            issuer.jwks_url,
            self.client,
            refresh_interval=300,
            refetch_cooldown=options.pop("cooldown", 10),
            fetch_timeout=2,
            clock=clock,
        )
        self.verifier = TokenVerifier(
            self.jwks,
            issuer=options.pop("issuer", ORIGIN),
            audience=options.pop("audience", ORIGIN),
            leeway=options.pop("leeway", 30),
            cache_size=options.pop("cache_size", 100),
            clock=clock,
        )
        if options.pop("fetch", True):
            self.run(self.jwks.refresh())

    def run(self, coroutine: Any) -> Any:
        return self.loop.run_until_complete(coroutine)

    def verify(self, token: str) -> Identity:
        return self.run(self.verifier.verify(token))  # type: ignore[no-any-return]

    def error(self, token: str) -> TokenError:
        with pytest.raises(TokenError) as caught:
            self.verify(token)
        return caught.value

    def close(self) -> None:
        self.run(self.client.aclose())
        self.loop.close()


@pytest.fixture
def harness(issuer: StubIssuer, clock: FakeClock) -> Iterator[VerifierHarness]:
    harness = VerifierHarness(issuer, clock)
    yield harness
    harness.close()


def forge(header: Any, claims: Any, signature: bytes = b"") -> str:
    return f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(claims).encode())}.{b64url(signature)}"


def test_verify_accepts_rs256_token(harness: VerifierHarness, issuer: StubIssuer, clock: FakeClock) -> None:
    identity = harness.verify(issuer.sign(claims_for(clock, "alice"), "rsa-1"))

    assert identity.sub == "alice"
    assert identity.email == "alice@example.com"
    assert identity.kid == "rsa-1"


@pytest.mark.parametrize("alg", ["PS256", "ES256"])
def test_verify_accepts_other_allowed_algorithms(issuer: StubIssuer, clock: FakeClock, alg: str) -> None:
    kid = issuer.add_key(alg)
    harness = VerifierHarness(issuer, clock)

    identity = harness.verify(issuer.sign(claims_for(clock), kid))
    harness.close()

    assert identity.kid == kid


@pytest.mark.parametrize("alg", ["none", "None", "NONE", "HS256", "RS512", "ES384", ""])
def test_verify_rejects_disallowed_alg(harness: VerifierHarness, clock: FakeClock, alg: str) -> None:
    token = forge({"alg": alg, "kid": "rsa-1"}, claims_for(clock))

    error = harness.error(token)

    assert error.code == "INVALID_TOKEN"


def test_verify_rejects_missing_alg(harness: VerifierHarness, clock: FakeClock) -> None:
    error = harness.error(forge({"kid": "rsa-1"}, claims_for(clock)))

    assert error.code == "INVALID_TOKEN"


def test_verify_rejects_hs256_keyed_with_public_key(harness: VerifierHarness, issuer: StubIssuer, clock: FakeClock) -> None:
    public = issuer.private_keys["rsa-1"]
    secrets = [
        json.dumps(issuer.published[0]).encode(),
        public.as_pem(private=False),
        public.as_der(private=False),
        base64.urlsafe_b64decode(issuer.published[0]["n"] + "=="),
    ]
    signing_input = f"{b64url(json.dumps({'alg': 'HS256', 'kid': 'rsa-1'}).encode())}.{b64url(json.dumps(claims_for(clock)).encode())}"
    tokens = [f"{signing_input}.{b64url(hmac.digest(secret, signing_input.encode(), 'sha256'))}" for secret in secrets]

    codes = [harness.error(token).code for token in tokens]

    assert codes == ["INVALID_TOKEN"] * 4


def test_verify_rejects_alg_other_than_keys(harness: VerifierHarness, issuer: StubIssuer, clock: FakeClock) -> None:
    # Signed with the RSA key but claiming PS256: the key's alg (RS256) decides, so this fails.
    token = issuer.sign(claims_for(clock), "rsa-1", alg="PS256")

    error = harness.error(token)

    assert error.code == "INVALID_TOKEN"
    assert "does not match" in error.message


def test_verify_rejects_bad_signature(harness: VerifierHarness, issuer: StubIssuer, clock: FakeClock) -> None:
    header, payload, _ = issuer.sign(claims_for(clock), "rsa-1").split(".")
    other = issuer.sign(claims_for(clock, "mallory"), "rsa-1").split(".")[2]

    error = harness.error(f"{header}.{payload}.{other}")

    assert error.code == "INVALID_TOKEN"


def test_verify_rejects_changed_payload(harness: VerifierHarness, issuer: StubIssuer, clock: FakeClock) -> None:
    header, _, signature = issuer.sign(claims_for(clock, "alice"), "ed-1").split(".")
    payload = b64url(json.dumps(claims_for(clock, "mallory")).encode())

    error = harness.error(f"{header}.{payload}.{signature}")

    assert error.code == "INVALID_TOKEN"


@pytest.mark.parametrize(
    ("shift", "code"),
    [({"iat": 20}, None), ({"nbf": 20}, None), ({"exp": -5}, None), ({"exp": -120}, "TOKEN_EXPIRED"), ({"nbf": 600}, "TOKEN_NOT_YET_VALID"), ({"iat": 600}, "TOKEN_NOT_YET_VALID")],
)
def test_verify_applies_leeway(harness: VerifierHarness, issuer: StubIssuer, clock: FakeClock, shift: dict[str, int], code: str | None) -> None:
    claims = claims_for(clock, **{name: int(clock.now) + seconds for name, seconds in shift.items()})
    token = issuer.sign(claims, "rsa-1")

    if code is None:
        assert harness.verify(token).sub == "alice"
    else:
        assert harness.error(token).code == code


@pytest.mark.parametrize("exp", [..., [1], None, "soon", True, "1e999"])
def test_verify_rejects_missing_or_malformed_exp(harness: VerifierHarness, issuer: StubIssuer, clock: FakeClock, exp: object) -> None:
    token = issuer.sign(claims_for(clock, exp=exp), "rsa-1")

    assert harness.error(token).code == "INVALID_TOKEN"


def test_verify_rejects_exp_overflowing_float(harness: VerifierHarness, issuer: StubIssuer, clock: FakeClock) -> None:
    payload = json.dumps(claims_for(clock)).replace('"exp": ', '"exp": 1e999, "x": ').encode()
    token = StubIssuer.sign_raw({"alg": "RS256", "kid": "rsa-1"}, payload, issuer.private_keys["rsa-1"], "RS256")

    assert harness.error(token).code == "INVALID_TOKEN"


def test_verify_rejects_iat_string(harness: VerifierHarness, issuer: StubIssuer, clock: FakeClock) -> None:
    assert harness.error(issuer.sign(claims_for(clock, iat="soon"), "rsa-1")).code == "INVALID_TOKEN"


def test_verify_expires_after_leeway(harness: VerifierHarness, issuer: StubIssuer, clock: FakeClock) -> None:
    token = issuer.sign(claims_for(clock), "rsa-1")
    harness.verify(token)
    clock.advance(900 + 31)

    assert harness.error(token).code == "TOKEN_EXPIRED"


@pytest.mark.parametrize(
    "overrides",
    [{"aud": "http://evil.example"}, {"iss": "http://evil.example"}, {"aud": ...}, {"iss": ...}, {"sub": ...}, {"sub": ""}, {"sub": 42}, {"aud": ["http://evil.example"]}, {"aud": [None, 1]}],
)
def test_verify_rejects_wrong_claims(harness: VerifierHarness, issuer: StubIssuer, clock: FakeClock, overrides: dict[str, Any]) -> None:
    token = issuer.sign(claims_for(clock, **overrides), "rsa-1")

    assert harness.error(token).code == "INVALID_TOKEN"


@pytest.mark.parametrize("overrides", [{"aud": ["http://other.example", ORIGIN]}, {"iss": ORIGIN + "/"}, {"aud": ORIGIN + "/"}])
def test_verify_accepts_audience_list_and_trailing_slash(harness: VerifierHarness, issuer: StubIssuer, clock: FakeClock, overrides: dict[str, Any]) -> None:
    token = issuer.sign(claims_for(clock, **overrides), "rsa-1")

    assert harness.verify(token).sub == "alice"


@pytest.mark.parametrize(
    "token",
    ["a.b.c", "....", "", "x", "a.b", "é.é.é", "a.b.c.d", "eyJ.eyJ.!!!", "=.=.=", "a.b.c.d.e.f"],
)
def test_verify_rejects_junk(harness: VerifierHarness, token: str) -> None:
    assert harness.error(token).code == "INVALID_TOKEN"


def test_verify_rejects_jwe(harness: VerifierHarness) -> None:
    header = b64url(json.dumps({"alg": "RSA-OAEP", "enc": "A256GCM", "zip": "DEF"}).encode())

    error = harness.error(f"{header}.AAAA.AAAA.AAAA.AAAA")

    assert "JWE" in error.message


def test_verify_rejects_zip_header(harness: VerifierHarness, issuer: StubIssuer, clock: FakeClock) -> None:
    token = issuer.sign(claims_for(clock), "rsa-1", header={"alg": "RS256", "kid": "rsa-1", "zip": "DEF"})

    assert "zip" in harness.error(token).message


@pytest.mark.parametrize("header", [None, [], "text", {"alg": "RS256", "kid": None}, {"alg": "RS256", "kid": 123}, {"alg": ["RS256"]}, {"alg": "RS256", "kid": "rsa-1", "crit": ["exp"]}])
def test_verify_rejects_bad_header(harness: VerifierHarness, issuer: StubIssuer, clock: FakeClock, header: Any) -> None:
    token = issuer.sign(claims_for(clock), "rsa-1", header=header)

    assert harness.error(token).code == "INVALID_TOKEN"


@pytest.mark.parametrize("claims", ["a string", [1, 2], 42, None])
def test_verify_rejects_payload_not_object(harness: VerifierHarness, issuer: StubIssuer, claims: Any) -> None:
    assert harness.error(issuer.sign(claims, "rsa-1")).code == "INVALID_TOKEN"


def test_verify_ignores_embedded_jwk_and_jku(harness: VerifierHarness, issuer: StubIssuer, clock: FakeClock) -> None:
    attacker = issuer.add_key("RS256", "attacker", publish=False)
    jwk = issuer.private_keys[attacker].as_dict(private=False)
    header = {"alg": "RS256", "kid": attacker, "jwk": jwk, "jku": "http://127.0.0.1:1/jwks", "x5u": "x", "x5c": ["x"]}

    error = harness.error(issuer.sign(claims_for(clock), attacker, header=header))

    assert error.code == "UNKNOWN_KEY"


@pytest.mark.parametrize("kid", ["../../../../dev/null", "' OR '1'='1", "nul\x00kid", "k" * 10_000, "%s%s%n"])
def test_verify_rejects_hostile_kid(issuer: StubIssuer, clock: FakeClock, kid: str) -> None:
    harness = VerifierHarness(issuer, clock)
    fetches = issuer.fetches
    token = issuer.sign(claims_for(clock), "rsa-1", header={"alg": "RS256", "kid": kid})

    error = harness.error(token)
    harness.error(token)
    harness.close()

    assert error.code == "UNKNOWN_KEY"
    assert issuer.fetches - fetches <= 1


def test_verify_without_kid_uses_single_key_of_alg(harness: VerifierHarness, issuer: StubIssuer, clock: FakeClock) -> None:
    token = issuer.sign(claims_for(clock), "ed-1", include_kid=False)

    assert harness.verify(token).kid == "ed-1"


def test_verify_without_kid_tries_each_candidate(issuer: StubIssuer, clock: FakeClock) -> None:
    issuer.published.clear()
    first = issuer.add_key("RS256", "kidless-1", with_kid=False)
    second = issuer.add_key("RS256", "kidless-2", with_kid=False)
    harness = VerifierHarness(issuer, clock)
    fetches = issuer.fetches

    identities = [harness.verify(issuer.sign(claims_for(clock, f"user{index}"), kid, include_kid=False)) for index, kid in enumerate([first, second] * 10)]
    harness.close()

    assert len(identities) == 20
    assert issuer.fetches == fetches


def test_verify_caches_verified_token(harness: VerifierHarness, issuer: StubIssuer, clock: FakeClock) -> None:
    token = issuer.sign(claims_for(clock), "rsa-1")
    first = harness.verify(token)
    hits = harness.jwks.hits

    second = harness.verify(token)

    assert second is first
    assert harness.verifier.cached(token) is first
    assert harness.jwks.hits == hits


def test_verify_cache_is_bounded(issuer: StubIssuer, clock: FakeClock) -> None:
    harness = VerifierHarness(issuer, clock, cache_size=3)
    tokens = [issuer.sign(claims_for(clock, f"user{index}"), "ed-1") for index in range(5)]

    for token in tokens:
        harness.verify(token)
    cached = [harness.verifier.cached(token) is not None for token in tokens]
    harness.close()

    assert cached == [False, False, True, True, True]


def test_verify_cache_drops_tokens_of_removed_key(harness: VerifierHarness, issuer: StubIssuer, clock: FakeClock) -> None:
    token = issuer.sign(claims_for(clock), "rsa-1")
    harness.verify(token)
    issuer.unpublish("rsa-1")

    harness.run(harness.jwks.refresh())

    assert harness.verifier.cached(token) is None
    assert harness.error(token).code == "UNKNOWN_KEY"


def test_verify_without_any_key_is_unavailable(issuer: StubIssuer, clock: FakeClock) -> None:
    issuer.set_mode("error")
    harness = VerifierHarness(issuer, clock, cooldown=0)
    token = issuer.sign(claims_for(clock), "rsa-1")

    with pytest.raises(AuthUnavailableError):
        harness.verify(token)
    issuer.set_mode("ok")
    identity = harness.verify(token)
    harness.close()

    assert identity.sub == "alice"


def test_verify_logs_no_token(harness: VerifierHarness, issuer: StubIssuer, clock: FakeClock, caplog: pytest.LogCaptureFixture) -> None:
    token = issuer.sign(claims_for(clock, exp=int(clock.now) - 500), "rsa-1")
    caplog.set_level(logging.DEBUG)

    harness.error(token)

    assert token not in caplog.text


_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=12,
)
_header_names = st.sampled_from(["alg", "kid", "zip", "crit", "jku", "jwk", "typ", "b64", "enc"])
_headers = st.dictionaries(_header_names, _json_values | st.sampled_from(["RS256", "EdDSA", "rsa-1", "ed-1", "none"]), max_size=5)
_claim_names = st.sampled_from(["exp", "nbf", "iat", "iss", "aud", "sub", "email", "name", "emailVerified", "image"])
_claims = st.dictionaries(_claim_names, _json_values, max_size=8) | _json_values


def test_verify_fuzz_raises_only_token_error(harness: VerifierHarness, issuer: StubIssuer) -> None:
    @hypothesis_settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(token=st.text(max_size=200) | st.lists(st.text("ABCxyz09_-=.", max_size=40), min_size=1, max_size=6).map(".".join))
    def check_text(token: str) -> None:
        try:
            harness.verify(token)
        except TokenError:
            pass

    @hypothesis_settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(header=_headers, claims=_claims, kid=st.sampled_from(["rsa-1", "ed-1"]))
    def check_signed(header: dict[str, Any], claims: Any, kid: str) -> None:
        token = StubIssuer.sign_raw(header, json.dumps(claims).encode(), issuer.private_keys[kid], issuer.algorithms[kid])
        try:
            harness.verify(token)
        except TokenError:
            pass

    check_text()
    check_signed()


def test_verify_rejects_non_base64_padding(harness: VerifierHarness, issuer: StubIssuer, clock: FakeClock) -> None:
    header, payload, signature = issuer.sign(claims_for(clock), "rsa-1").split(".")
    padded = base64.urlsafe_b64encode(base64.urlsafe_b64decode(signature + "==")).decode()

    assert padded.endswith("=")
    assert harness.error(f"{header}.{payload}.{padded}").code == "INVALID_TOKEN"
