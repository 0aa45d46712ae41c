"""Tests of JwksCache and JWK parsing against the stub issuer."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from typing import Any

import httpx
import msgspec
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from joserfc.jwk import ECKey, OKPKey, RSAKey

from aibrain.api.jwks import JwksCache
from aibrain.api.keys import UnusableKeyError, implied_algorithm, parse_key, parse_key_set
from tests.api.support import FakeClock
from tests.fixtures.issuer import StubIssuer, b64url


class CacheHarness:
    """A JwksCache with its client on a private event loop."""

    def __init__(self, issuer: StubIssuer, clock: FakeClock, *, cooldown: float = 10, timeout: float = 2) -> None:
        self.loop = asyncio.new_event_loop()
        self.client = httpx.AsyncClient()
        self.cache = JwksCache(
            issuer.jwks_url,
            self.client,
            refresh_interval=300,
            refetch_cooldown=cooldown,
            fetch_timeout=timeout,
            clock=clock,
        )

    def run(self, coroutine: Any) -> Any:
        return self.loop.run_until_complete(coroutine)

    def close(self) -> None:
        self.run(self.cache.close())
        self.run(self.client.aclose())
        self.loop.close()


@pytest.fixture
def harness(issuer: StubIssuer, clock: FakeClock) -> Iterator[CacheHarness]:
    harness = CacheHarness(issuer, clock)
    yield harness
    harness.close()


def test_jwks_refresh_loads_keys(harness: CacheHarness, issuer: StubIssuer) -> None:
    installed = harness.run(harness.cache.refresh())

    assert installed is True
    assert harness.cache.stats().kids == ["ed-1", "rsa-1"]
    assert issuer.fetches == 1


def test_jwks_stats_report_age_and_counters(harness: CacheHarness, clock: FakeClock) -> None:
    harness.run(harness.cache.refresh())
    clock.advance(42)
    harness.cache.get("rsa-1")
    harness.cache.get("missing")

    stats = harness.cache.stats()

    assert stats.age_seconds == 42
    assert (stats.hits, stats.misses, stats.refreshes, stats.failures) == (1, 1, 1, 0)


def test_jwks_stats_without_fetch_have_no_age(harness: CacheHarness) -> None:
    assert harness.cache.stats().age_seconds is None


@pytest.mark.parametrize("mode", ["error", "garbage", "empty"])
def test_jwks_failed_refresh_keeps_keys(harness: CacheHarness, issuer: StubIssuer, mode: Any, caplog: pytest.LogCaptureFixture) -> None:
    harness.run(harness.cache.refresh())
    issuer.set_mode(mode)
    caplog.set_level(logging.WARNING, logger="aibrain.api.jwks")

    installed = harness.run(harness.cache.refresh())

    assert installed is False
    assert harness.cache.get("rsa-1") is not None
    assert harness.cache.stats().failures == 1
    assert len([record for record in caplog.records if "failed" in record.getMessage()]) == 1


def test_jwks_hanging_server_times_out_and_keeps_keys(issuer: StubIssuer, clock: FakeClock) -> None:
    harness = CacheHarness(issuer, clock, timeout=0.3)
    harness.run(harness.cache.refresh())
    issuer.set_mode("hang")

    installed = harness.run(harness.cache.refresh())
    issuer.set_mode("ok")
    kept = harness.cache.get("ed-1")
    harness.close()

    assert installed is False
    assert kept is not None


def test_jwks_refetch_is_single_flight(harness: CacheHarness, issuer: StubIssuer) -> None:
    harness.run(harness.cache.refresh())
    issuer.add_key("RS256", "rotated")
    before = issuer.fetches

    async def many() -> list[bool]:
        return list(await asyncio.gather(*(harness.cache.refetch() for _ in range(20))))

    results = harness.run(many())

    assert issuer.fetches - before == 1
    assert results == [True] * 20
    assert harness.cache.get("rotated") is not None


def test_jwks_refetch_respects_cooldown(harness: CacheHarness, issuer: StubIssuer, clock: FakeClock) -> None:
    harness.run(harness.cache.refetch())
    before = issuer.fetches

    during = harness.run(harness.cache.refetch())
    clock.advance(10)
    after = harness.run(harness.cache.refetch())

    assert during is False
    assert after is True
    assert issuer.fetches - before == 1


def test_jwks_removed_key_notifies_listeners(harness: CacheHarness, issuer: StubIssuer) -> None:
    calls: list[str] = []
    harness.cache.on_keys_removed(lambda: calls.append("removed"))
    harness.run(harness.cache.refresh())
    issuer.add_key("EdDSA", "ed-2")
    harness.run(harness.cache.refresh())
    issuer.unpublish("ed-1")

    harness.run(harness.cache.refresh())

    assert calls == ["removed"]
    assert harness.cache.get("ed-1") is None


def _small_rsa_jwk() -> dict[str, Any]:
    numbers = rsa.generate_private_key(public_exponent=65537, key_size=1024).public_key().public_numbers()
    modulus = b64url(numbers.n.to_bytes((numbers.n.bit_length() + 7) // 8, "big"))
    return {"kty": "RSA", "n": modulus, "e": "AQAB", "alg": "RS256", "kid": "small-rsa"}


def test_jwks_skips_unusable_keys(harness: CacheHarness, issuer: StubIssuer, caplog: pytest.LogCaptureFixture) -> None:
    rsa_jwk = dict(issuer.published[0])
    issuer.published += [
        {"kty": "AKP", "alg": "ML-DSA-44", "pub": "AAAA", "kid": "pq"},
        {**OKPKey.generate_key("X25519").as_dict(private=False), "kid": "x25519"},
        {**rsa_jwk, "use": "enc", "kid": "rsa-enc"},
        42,
        _small_rsa_jwk(),
    ]
    caplog.set_level(logging.WARNING, logger="aibrain.api.jwks")

    harness.run(harness.cache.refresh())

    skipped = [record for record in caplog.records if "skipped" in record.getMessage()]
    assert harness.cache.stats().kids == ["ed-1", "rsa-1"]
    assert len(skipped) == 5


def test_parse_key_implies_algorithm() -> None:
    jwks = [
        RSAKey.generate_key(2048).as_dict(private=False),
        ECKey.generate_key("P-256").as_dict(private=False),
        OKPKey.generate_key("Ed25519").as_dict(private=False),
    ]

    algs = [parse_key(jwk).alg for jwk in jwks]

    assert algs == ["RS256", "ES256", "EdDSA"]


def test_implied_algorithm_unknown_curve() -> None:
    assert implied_algorithm({"kty": "EC", "crv": "P-384"}) is None


@pytest.mark.parametrize(
    "jwk",
    [
        {"kty": "oct", "k": "c2VjcmV0"},
        {"kty": "RSA", "alg": "RS512", "n": "AQAB", "e": "AQAB"},
        {"kty": "RSA", "alg": "EdDSA", "n": "AQAB", "e": "AQAB"},
        {"kty": "RSA", "alg": "RS256", "n": "!!", "e": "AQAB"},
        {"kty": "OKP", "crv": "Ed25519", "x": "AAAA", "alg": "EdDSA", "key_ops": ["encrypt"]},
        {"kty": "OKP", "crv": "Ed25519", "x": "AAAA", "alg": "EdDSA", "kid": 7},
        "not an object",
    ],
)
def test_parse_key_rejects_unusable(jwk: Any) -> None:
    with pytest.raises(UnusableKeyError):
        parse_key(jwk)


def test_parse_key_drops_private_parts() -> None:
    private = RSAKey.generate_key(2048).as_dict(private=True)

    key = parse_key(private)

    assert key.key.is_private is False


def test_parse_key_set_rejects_non_jwks() -> None:
    with pytest.raises(ValueError, match="keys"):
        parse_key_set(msgspec.json.encode({"not": "keys"}))


def test_parse_key_set_skips_duplicate_kid(issuer: StubIssuer) -> None:
    issuer.published.append({**issuer.published[1]})

    parsed = parse_key_set(msgspec.json.encode({"keys": issuer.published}))

    assert [key.kid for key in parsed.keys] == ["rsa-1", "ed-1"]
    assert "duplicate" in parsed.skipped[0]
