"""The events API's JWKS cache under key rotation, a failing auth server, unusable keys and kid-less tokens.

Every API here is a real process pointed at a stub issuer whose fetch counter shows how often the
cache went to the network. Waiting happens only for events the API reports in `GET /health`.
"""

from __future__ import annotations

import base64
import itertools
import json
import subprocess
import sys
import warnings
from typing import Any

import httpx
import pytest
from Crypto.Util.number import getPrime, inverse
from cryptography.hazmat.primitives.asymmetric import rsa
from joserfc.errors import SecurityWarning
from joserfc.jwk import OKPKey, RSAKey

from tests.fixtures.issuer import StubIssuer, generate_key
from tests.hostile.conftest import ApiFactory, ApiUnderTest
from tests.hostile.support import assert_unauthorized, bearer, claims, decode_segment, jwks_stats, wait_for
from tests.servers import start_api, start_auth

_token_numbers = itertools.count()
SHORT_REFRESH = {"AIBRAIN_JWKS_REFRESH_INTERVAL": "0.5", "AIBRAIN_JWKS_FETCH_TIMEOUT": "1"}


def me(api: ApiUnderTest, issuer: StubIssuer, kid: str, user: str = "cache-user", **overrides: Any) -> httpx.Response:
    """Call GET /me with a fresh token signed by `kid`, so that the verified-token cache never returns it."""
    token = issuer.sign(claims(issuer, user, jti=f"{kid}-{next(_token_numbers)}", **overrides), kid)
    return httpx.get(api.url + "/me", headers=bearer(token), timeout=10.0)


def wait_for_refreshes(api: ApiUnderTest, count: int, field: str = "refreshes") -> dict[str, Any]:
    """Wait until the cache has counted `count` more refreshes (or failures) than now; return the stats."""
    target = jwks_stats(api.service)[field] + count
    return wait_for(  # type: ignore[no-any-return]
        lambda: (stats := jwks_stats(api.service))[field] >= target and stats, f"{count} more JWKS {field}"
    )


# Rotation


def test_rotated_key_accepted_with_one_fetch(api_factory: ApiFactory) -> None:
    api = api_factory()
    issuer = api.issuer
    assert me(api, issuer, "rsa-1").status_code == 200
    fetches_before = issuer.fetches

    issuer.add_key("RS256", "rsa-2")
    response = me(api, issuer, "rsa-2")

    assert response.status_code == 200, response.text
    assert issuer.fetches == fetches_before + 1
    assert me(api, issuer, "rsa-1").status_code == 200
    assert issuer.fetches == fetches_before + 1


def test_removed_key_rejected_after_refresh(api_factory: ApiFactory) -> None:
    api = api_factory(**SHORT_REFRESH)
    issuer = api.issuer
    issuer.add_key("RS256", "rsa-2")
    wait_for(lambda: "rsa-2" in jwks_stats(api.service)["kids"], "rsa-2 in the cache")
    old_token = issuer.sign(claims(issuer, "rotated-user"), "rsa-1")
    assert httpx.get(api.url + "/me", headers=bearer(old_token)).status_code == 200

    issuer.unpublish("rsa-1")
    wait_for(lambda: "rsa-1" not in jwks_stats(api.service)["kids"], "rsa-1 to leave the cache")

    # The same token was accepted (and cached as verified) before its key left the JWKS.
    assert_unauthorized(httpx.get(api.url + "/me", headers=bearer(old_token)), "UNKNOWN_KEY")
    assert me(api, issuer, "rsa-2").status_code == 200


def test_auth_service_rotation_seen_with_one_fetch(tmp_path: Any) -> None:
    """Rotate the real auth service's key with `aibrain keys rotate`; the API accepts the new kid at once."""
    auth = start_auth(tmp_path / "auth")
    api = start_api(tmp_path / "api", auth.url)
    try:
        signed_up = httpx.post(
            auth.url + "/api/auth/sign-up/email",
            json={"name": "Rota", "email": "rota@example.com", "password": "password123"},
        ).json()
        old_jwt = signed_up["jwt"]
        assert httpx.get(api.url + "/me", headers=bearer(old_jwt)).status_code == 200
        refreshes_before = httpx.get(api.url + "/health").json()["jwks"]["refreshes"]

        rotated = subprocess.run(
            [sys.executable, "-m", "aibrain", "keys", "rotate"], env=auth.env, capture_output=True, text=True, timeout=60
        )
        assert rotated.returncode == 0, rotated.stderr
        # The running service rereads its key table every 10 s; a restart makes the new key current now.
        auth.stop()
        auth = start_auth(tmp_path / "auth", port=auth.port)
        new_jwt = httpx.get(auth.url + "/api/auth/token", headers=bearer(signed_up["token"])).json()["token"]
        assert decode_segment(new_jwt.split(".")[0])["kid"] != decode_segment(old_jwt.split(".")[0])["kid"]

        assert httpx.get(api.url + "/me", headers=bearer(new_jwt)).status_code == 200
        assert httpx.get(api.url + "/health").json()["jwks"]["refreshes"] == refreshes_before + 1
        assert httpx.get(api.url + "/me", headers=bearer(old_jwt)).status_code == 200
    finally:
        api.stop()
        auth.stop()


# A failing auth server


@pytest.fixture(scope="module")
def refreshing_api(api_factory: ApiFactory) -> ApiUnderTest:
    return api_factory(**SHORT_REFRESH)


@pytest.mark.parametrize("mode", ["error", "garbage", "empty", "hang"])
def test_failed_refresh_keeps_cached_keys(refreshing_api: ApiUnderTest, mode: str) -> None:
    api = refreshing_api
    issuer = api.issuer
    assert me(api, issuer, "rsa-1").status_code == 200

    issuer.set_mode(mode)  # type: ignore[arg-type]
    wait_for_refreshes(api, 2, "failures")
    unknown = issuer.sign(claims(issuer, "unknown-kid-user"), "rsa-1", header={"alg": "RS256", "kid": "not-published"})
    unknown_response = httpx.get(api.url + "/me", headers=bearer(unknown), timeout=10.0)
    valid_response = me(api, issuer, "rsa-1")
    issuer.set_mode("ok")

    assert_unauthorized(unknown_response, "UNKNOWN_KEY")
    assert valid_response.status_code == 200, valid_response.text
    assert jwks_stats(api.service)["kids"] == ["rsa-1"]


def test_failed_refresh_logged_once_each(refreshing_api: ApiUnderTest) -> None:
    api = refreshing_api
    issuer = api.issuer
    for mode in ("error", "garbage", "empty", "hang"):
        issuer.set_mode(mode)  # type: ignore[arg-type]
        wait_for_refreshes(api, 1, "failures")
    issuer.set_mode("ok")
    # Two successful refreshes after the switch mean every fetch made before it has finished.
    stats = wait_for_refreshes(api, 2)

    warnings_logged = api.service.log_text().count("WARNING aibrain.api.jwks: JWKS fetch from")
    assert warnings_logged == stats["failures"]
    assert jwks_stats(api.service)["failures"] == stats["failures"]


# Unusable keys next to a good one


def _rsa_512_key() -> RSAKey:
    """Build a 512-bit RSA key from two primes; cryptography refuses to generate keys this short."""
    exponent = 65537
    while True:
        p, q = getPrime(256), getPrime(256)
        if p != q and (p - 1) % exponent and (q - 1) % exponent:
            break
    d = inverse(exponent, (p - 1) * (q - 1))
    numbers = rsa.RSAPrivateNumbers(
        p, q, d, d % (p - 1), d % (q - 1), inverse(q, p), rsa.RSAPublicNumbers(exponent, p * q)
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SecurityWarning)
        return RSAKey.import_key(numbers.private_key())


@pytest.fixture(scope="module")
def mixed_api(api_factory: ApiFactory) -> ApiUnderTest:
    issuer = StubIssuer().start()
    issuer.add_key("RS256", "rsa-1")
    issuer.add_key("RS256", "rsa-enc")
    issuer.published[-1]["use"] = "enc"
    short = _rsa_512_key()
    issuer.private_keys["rsa-512"] = short
    issuer.algorithms["rsa-512"] = "RS256"
    issuer.published.append({**short.as_dict(private=False), "alg": "RS256", "kid": "rsa-512"})
    x25519 = OKPKey.generate_key("X25519")
    issuer.published.append({**x25519.as_dict(private=False), "kid": "x25519-1"})
    akp_public = base64.urlsafe_b64encode(bytes(1312)).rstrip(b"=").decode()
    issuer.published.append({"kty": "AKP", "alg": "ML-DSA-44", "pub": akp_public, "kid": "akp-1"})
    issuer.published.append(42)
    return api_factory(issuer=issuer)


SKIPPED_KEYS = {"rsa-enc": "#1", "rsa-512": "#2", "x25519-1": "#3", "akp-1": "#4", "bare-number": "#5"}


def test_usable_key_works_beside_unusable_ones(mixed_api: ApiUnderTest) -> None:
    assert me(mixed_api, mixed_api.issuer, "rsa-1").status_code == 200
    assert jwks_stats(mixed_api.service)["kids"] == ["rsa-1"]


@pytest.mark.parametrize("kid", ["rsa-enc", "rsa-512"])
def test_token_of_skipped_key_rejected(mixed_api: ApiUnderTest, kid: str) -> None:
    """These keys can really sign, so only the cache's refusal to use them stops the token."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SecurityWarning)
        response = me(mixed_api, mixed_api.issuer, kid)

    assert_unauthorized(response)


@pytest.mark.parametrize("kid", ["x25519-1", "akp-1"])
def test_token_naming_non_signing_key_rejected(mixed_api: ApiUnderTest, kid: str) -> None:
    issuer = mixed_api.issuer
    for alg, signing_kid in (("RS256", "rsa-1"), ("EdDSA", "ed-forged"), ("ES256", "es-forged")):
        if signing_kid not in issuer.private_keys:
            issuer.add_key(alg, signing_kid, publish=False)
        token = issuer.sign(claims(issuer, "skipped-key-user"), signing_kid, header={"alg": alg, "kid": kid})

        assert_unauthorized(httpx.get(mixed_api.url + "/me", headers=bearer(token)))


@pytest.mark.parametrize("name", list(SKIPPED_KEYS))
def test_skipped_key_logged_once_per_fetch(mixed_api: ApiUnderTest, name: str) -> None:
    position = SKIPPED_KEYS[name]
    lines = [
        line
        for line in mixed_api.service.log_text().splitlines()
        if "skipped unusable" in line and f"key {position} " in line
    ]

    assert len(lines) == mixed_api.issuer.fetches


def test_unusable_keys_cause_no_error_log(mixed_api: ApiUnderTest) -> None:
    log = mixed_api.service.log_text()

    assert "Traceback" not in log
    assert " ERROR " not in log


# Tokens without kid


def test_kidless_token_matches_single_kidless_key(api_factory: ApiFactory) -> None:
    issuer = StubIssuer().start()
    issuer.add_key("RS256", "lone", with_kid=False)
    api = api_factory(issuer=issuer)
    token = issuer.sign(claims(issuer, "kidless-user"), "lone", include_kid=False)

    response = httpx.get(api.url + "/me", headers=bearer(token))

    assert response.status_code == 200, response.text


def test_kidless_tokens_never_refetch_per_request(api_factory: ApiFactory) -> None:
    issuer = StubIssuer().start()
    issuer.add_key("RS256", "first", with_kid=False)
    issuer.add_key("RS256", "second", with_kid=False)
    issuer.add_key("RS256", "stranger", publish=False)
    api = api_factory(issuer=issuer)
    fetches_before = issuer.fetches

    statuses = []
    for index in range(20):
        kid = ("first", "second", "stranger")[index % 3]
        token = issuer.sign(claims(issuer, "kidless-user", jti=str(index)), kid, include_kid=False)
        statuses.append((kid, httpx.get(api.url + "/me", headers=bearer(token)).status_code))

    assert issuer.fetches <= fetches_before + 1
    assert {status for kid, status in statuses if kid != "stranger"} == {200}
    assert {status for kid, status in statuses if kid == "stranger"} == {401}


def test_kidless_token_with_other_alg_rejected(api_factory: ApiFactory) -> None:
    issuer = StubIssuer().start()
    issuer.add_key("RS256", "lone", with_kid=False)
    issuer.add_key("EdDSA", "ed-unpublished", publish=False)
    api = api_factory(issuer=issuer)
    forged = generate_key("RS256")
    payload = json.dumps(claims(issuer, "kidless-user")).encode()

    for token in (
        issuer.sign(claims(issuer, "kidless-user"), "ed-unpublished", include_kid=False),
        StubIssuer.sign_raw({"alg": "PS256"}, payload, issuer.private_keys["lone"], "PS256"),
        StubIssuer.sign_raw({"alg": "RS256"}, payload, forged, "RS256"),
    ):
        assert_unauthorized(httpx.get(api.url + "/me", headers=bearer(token)))
