"""Verify the auth server's JWTs with the cached JWKS, and remember tokens that passed.

Every rejection raises `TokenError` (the API responds with 401), and a missing key set raises
`AuthUnavailableError` (503). The verifier lets no other exception escape.

Rules, in the order they are checked:
- the token is ASCII, has exactly three base64url parts (a five-part JWE is rejected) and its
  header is a JSON object without `zip` or `crit`;
- `alg` is one of RS256, PS256, ES256, EdDSA and equals the algorithm of the key; the key is found
  by `kid`, or for a token without `kid` among the keys of that algorithm (each tried once).
  Header members `jwk`, `jku`, `x5u` and `x5c` are ignored;
- `exp` is required, `nbf` and `iat` are checked when present, each with `leeway` seconds;
- `iss` equals the configured issuer and `aud` equals the configured audience or is a list that
  contains it. One trailing slash on either side of these comparisons is ignored, so
  `http://host:3000/` matches `http://host:3000`;
- `sub` is a non-empty string.
"""

from __future__ import annotations

import base64
import binascii
import math
import re
from collections.abc import Callable
from typing import Any, Final

import msgspec
from joserfc.errors import JoseError

from aibrain.api.jwks import JwksCache
from aibrain.api.keys import ALGORITHMS, MAX_KID_LENGTH, VerificationKey

# A token without kid is tried against at most this many keys of its algorithm.
MAX_KIDLESS_CANDIDATES: Final = 4

_BASE64URL = re.compile(r"[A-Za-z0-9_-]*")


class TokenError(Exception):
    """Raised when a bearer token is not accepted. `code` is the API error code of the 401."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        # The header's kid when the header could be read, for the log line of the rejection.
        self.kid: object = None


class AuthUnavailableError(Exception):
    """Raised when no signing key is known at all, so no token can be checked (503)."""


class Identity(msgspec.Struct, frozen=True, gc=False):
    """The verified user of a request, taken from the token's claims."""

    sub: str
    email: str | None
    name: str | None
    email_verified: bool
    image: str | None
    kid: str | None
    # exp plus the leeway: the last moment, in clock seconds, at which the token is accepted.
    valid_until: float


def _invalid(message: str) -> TokenError:
    return TokenError("INVALID_TOKEN", message)


def _b64decode(segment: str, part: str) -> bytes:
    if len(segment) % 4 == 1 or _BASE64URL.fullmatch(segment) is None:
        raise _invalid(f"token {part} is not base64url")
    try:
        return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
    except (binascii.Error, ValueError) as exc:
        raise _invalid(f"token {part} is not base64url") from exc


def _decode_object(segment: str, part: str) -> dict[str, Any]:
    try:
        value = msgspec.json.decode(_b64decode(segment, part))
    except msgspec.DecodeError as exc:
        raise _invalid(f"token {part} is not valid JSON") from exc
    if not isinstance(value, dict):
        raise _invalid(f"token {part} is not a JSON object")
    return value


def _same_url(value: str, expected: str) -> bool:
    return value.removesuffix("/") == expected.removesuffix("/")


def _numeric_claim(claims: dict[str, Any], name: str) -> float | None:
    value = claims.get(name)
    if value is None and name not in claims:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise _invalid(f"claim {name} must be a number of seconds")
    return float(value)


def _optional_str(claims: dict[str, Any], name: str) -> str | None:
    value = claims.get(name)
    return value if isinstance(value, str) else None


class TokenVerifier:
    """Check bearer tokens against a JwksCache and keep the ones that passed until they expire."""

    def __init__(
        self,
        jwks: JwksCache,
        *,
        issuer: str,
        audience: str,
        leeway: float,
        cache_size: int,
        clock: Callable[[], float],
    ) -> None:
        self._jwks = jwks
        self._issuer = issuer
        self._audience = audience
        self._leeway = leeway
        self._cache_size = cache_size
        self._clock = clock
        self._cache: dict[str, Identity] = {}
        jwks.on_keys_removed(self._cache.clear)

    def cached(self, token: str) -> Identity | None:
        """Return the identity of a token verified before and not yet expired, else None."""
        identity = self._cache.get(token)
        if identity is not None and self._clock() <= identity.valid_until:
            return identity
        return None

    async def verify(self, token: str) -> Identity:
        """Verify a token fully (signature and claims) and cache the result."""
        identity = self.cached(token)
        if identity is not None:
            return identity

        identity = await self._verify_uncached(token)
        self._remember(token, identity)
        return identity

    def _remember(self, token: str, identity: Identity) -> None:
        if self._cache_size <= 0:
            return
        self._cache.pop(token, None)
        while len(self._cache) >= self._cache_size:
            # Dicts keep insertion order, so the first key is the oldest entry.
            del self._cache[next(iter(self._cache))]
        self._cache[token] = identity

    async def _verify_uncached(self, token: str) -> Identity:
        if not token.isascii():
            raise _invalid("token contains non-ASCII characters")
        parts = token.split(".")
        if len(parts) == 5:
            raise _invalid("encrypted tokens (JWE) are not accepted")
        if len(parts) != 3:
            raise _invalid(
                "token is not a JWT (three base64url parts separated by dots); send the jwt from sign-in "
                "or GET /api/auth/token, not the session token"
            )

        header = _decode_object(parts[0], "header")
        try:
            alg = self._check_header(header)
            signature = _b64decode(parts[2], "signature")
            keys = await self._candidate_keys(header, alg)
            key = self._verify_signature(keys, f"{parts[0]}.{parts[1]}".encode("ascii"), signature)
            claims = _decode_object(parts[1], "payload")
            return self._check_claims(claims, key)
        except TokenError as exc:
            exc.kid = header.get("kid")
            raise

    def _check_header(self, header: dict[str, Any]) -> str:
        alg = header.get("alg")
        if not isinstance(alg, str):
            raise _invalid("token header has no alg")
        if alg not in ALGORITHMS:
            raise _invalid(f"algorithm {alg[:32]!r} is not allowed; use RS256, PS256, ES256 or EdDSA")
        if "zip" in header:
            raise _invalid("compressed tokens (zip header) are not accepted")
        if "crit" in header:
            raise _invalid("critical header extensions (crit) are not supported")
        kid = header.get("kid")
        if "kid" in header and not isinstance(kid, str):
            raise _invalid("token header kid must be a string")
        return alg

    async def _candidate_keys(self, header: dict[str, Any], alg: str) -> list[VerificationKey]:
        if not self._jwks.has_keys:
            await self._jwks.refetch()
            if not self._jwks.has_keys:
                raise AuthUnavailableError("no signing keys are known yet")

        kid = header.get("kid")
        if kid is None:
            return self._kidless_candidates(alg)
        if not 0 < len(kid) <= MAX_KID_LENGTH:
            raise TokenError("UNKNOWN_KEY", "no signing key has this kid")

        key = self._jwks.get(kid)
        if key is None and await self._jwks.refetch():
            key = self._jwks.get(kid)
        if key is None:
            raise TokenError("UNKNOWN_KEY", "no signing key has this kid")
        if key.alg != alg:
            raise _invalid(f"token algorithm {alg} does not match the key's algorithm {key.alg}")
        return [key]

    def _kidless_candidates(self, alg: str) -> list[VerificationKey]:
        keys = self._jwks.keys_for_algorithm(alg)
        if not keys:
            raise TokenError("UNKNOWN_KEY", f"token has no kid and no signing key uses {alg}")
        if len(keys) > MAX_KIDLESS_CANDIDATES:
            raise TokenError("UNKNOWN_KEY", f"token has no kid and {len(keys)} keys use {alg}; a kid is required")
        return keys

    @staticmethod
    def _verify_signature(keys: list[VerificationKey], signing_input: bytes, signature: bytes) -> VerificationKey:
        for key in keys:
            try:
                if key.verify(signing_input, signature):
                    return key
            except (JoseError, ValueError, TypeError):
                # A signature the library cannot even parse is as invalid as a wrong one.
                continue
        raise _invalid("token signature is invalid")

    def _check_claims(self, claims: dict[str, Any], key: VerificationKey) -> Identity:
        now = self._clock()
        exp = _numeric_claim(claims, "exp")
        if exp is None:
            raise _invalid("token has no exp claim")
        if now > exp + self._leeway:
            raise TokenError("TOKEN_EXPIRED", "token has expired; get a new one from the auth server")
        nbf = _numeric_claim(claims, "nbf")
        if nbf is not None and nbf > now + self._leeway:
            raise TokenError("TOKEN_NOT_YET_VALID", "token is not valid yet (nbf is in the future)")
        iat = _numeric_claim(claims, "iat")
        if iat is not None and iat > now + self._leeway:
            raise TokenError("TOKEN_NOT_YET_VALID", "token was issued in the future (iat)")

        self._check_issuer_and_audience(claims)
        sub = claims.get("sub")
        if not isinstance(sub, str) or not sub:
            raise _invalid("token has no sub claim (a non-empty string)")

        verified = claims.get("emailVerified")
        return Identity(
            sub=sub,
            email=_optional_str(claims, "email"),
            name=_optional_str(claims, "name"),
            email_verified=verified if isinstance(verified, bool) else False,
            image=_optional_str(claims, "image"),
            kid=key.kid,
            valid_until=exp + self._leeway,
        )

    def _check_issuer_and_audience(self, claims: dict[str, Any]) -> None:
        iss = claims.get("iss")
        if not isinstance(iss, str) or not _same_url(iss, self._issuer):
            raise _invalid(f"token issuer is not {self._issuer}")

        aud = claims.get("aud")
        audiences = aud if isinstance(aud, list) else [aud]
        if not any(isinstance(item, str) and _same_url(item, self._audience) for item in audiences):
            raise _invalid(f"token audience does not include {self._audience}")
