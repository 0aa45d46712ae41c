"""Turn a JWKS document into verification keys, skipping every key this service cannot use.

Only public signature keys of four algorithms are accepted: RS256, PS256, ES256 (P-256) and
EdDSA (Ed25519). A key's algorithm comes from its own `alg` member or, when that is absent, from
its type and curve (RSA -> RS256, EC P-256 -> ES256, OKP Ed25519 -> EdDSA). The token header never
chooses the algorithm; it can only agree with the key.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from dataclasses import dataclass, field
from typing import Any, Final

import msgspec
from joserfc.errors import JoseError
from joserfc.jwa import EdDSA, ESAlgorithm, RSAAlgorithm, RSAPSSAlgorithm
from joserfc.jwk import ECKey, OKPKey, RSAKey
from joserfc.jws import JWSAlgModel

ALGORITHMS: Final[dict[str, JWSAlgModel]] = {
    "RS256": RSAAlgorithm(256),
    "PS256": RSAPSSAlgorithm(256),
    "ES256": ESAlgorithm("ES256", "P-256", 256),
    "EdDSA": EdDSA,
}

MIN_RSA_BITS: Final = 2048
MAX_KID_LENGTH: Final = 256

# Public members that each key type needs; everything else in a JWK (private parts included) is dropped.
_PUBLIC_MEMBERS: Final[dict[str, tuple[str, ...]]] = {
    "RSA": ("n", "e"),
    "EC": ("crv", "x", "y"),
    "OKP": ("crv", "x"),
}

VerificationKeyObject = RSAKey | ECKey | OKPKey


@dataclass(frozen=True, slots=True)
class VerificationKey:
    """A usable public key with the one algorithm it verifies."""

    kid: str | None
    alg: str
    algorithm: JWSAlgModel = field(repr=False)
    key: VerificationKeyObject = field(repr=False)
    thumbprint: str

    def verify(self, signing_input: bytes, signature: bytes) -> bool:
        """Check a signature. A signature of the wrong length or form is invalid, not an error."""
        return bool(self.algorithm.verify(signing_input, signature, self.key))


class UnusableKeyError(Exception):
    """Raised by `parse_key` with the reason a JWK cannot verify tokens here."""


@dataclass(slots=True)
class ParsedKeySet:
    """The result of reading a JWKS document: usable keys and the reason for each skipped one."""

    keys: list[VerificationKey]
    skipped: list[str]


def implied_algorithm(jwk: dict[str, Any]) -> str | None:
    """Return the algorithm a JWK without `alg` is used with, or None when it has no signing use here."""
    kty = jwk.get("kty")
    crv = jwk.get("crv")
    if kty == "RSA":
        return "RS256"
    if kty == "EC" and crv == "P-256":
        return "ES256"
    if kty == "OKP" and crv == "Ed25519":
        return "EdDSA"
    return None


def _check_members(jwk: dict[str, Any]) -> tuple[str, str]:
    """Validate the members that decide whether a key is usable, and return its kty and algorithm."""
    kty = jwk.get("kty")
    if kty not in _PUBLIC_MEMBERS:
        raise UnusableKeyError(f"key type {kty!r} is not supported")

    alg = jwk.get("alg", None)
    if alg is None:
        alg = implied_algorithm(jwk)
        if alg is None:
            raise UnusableKeyError(f"no signing algorithm for key type {kty!r} with curve {jwk.get('crv')!r}")
    if alg not in ALGORITHMS:
        raise UnusableKeyError(f"algorithm {alg!r} is not allowed")
    if ALGORITHMS[alg].key_type != kty:
        raise UnusableKeyError(f"algorithm {alg!r} does not fit key type {kty!r}")

    use = jwk.get("use", "sig")
    if use != "sig":
        raise UnusableKeyError(f"key use {use!r} is not 'sig'")
    key_ops = jwk.get("key_ops")
    if key_ops is not None and (not isinstance(key_ops, list) or "verify" not in key_ops):
        raise UnusableKeyError("key_ops does not contain 'verify'")
    return kty, alg


def parse_key(jwk: object) -> VerificationKey:
    """Build a verification key from one JWK, or raise UnusableKeyError saying why not."""
    if not isinstance(jwk, dict):
        raise UnusableKeyError(f"a JWK must be a JSON object, got {type(jwk).__name__}")
    kty, alg = _check_members(jwk)

    kid = jwk.get("kid")
    if kid is not None and (not isinstance(kid, str) or not 0 < len(kid) <= MAX_KID_LENGTH):
        raise UnusableKeyError(f"kid must be a string of 1 to {MAX_KID_LENGTH} characters")

    public = {name: jwk[name] for name in _PUBLIC_MEMBERS[kty] if name in jwk}
    public["kty"] = kty
    if kty == "RSA":
        # Checked before joserfc imports the key, because joserfc only warns about short RSA keys.
        bits = _modulus_bits(public.get("n"))
        if bits < MIN_RSA_BITS:
            raise UnusableKeyError(f"RSA key of {bits} bits is shorter than {MIN_RSA_BITS}")
    try:
        key = _import_public_key(kty, public)
    except (JoseError, ValueError, TypeError, KeyError) as exc:
        raise UnusableKeyError(f"invalid {kty} key material: {exc}") from exc

    if isinstance(key, ECKey) and key.curve_name != "P-256":
        raise UnusableKeyError(f"EC curve {key.curve_name!r} is not P-256")
    if isinstance(key, OKPKey) and key.curve_name != "Ed25519":
        raise UnusableKeyError(f"OKP curve {key.curve_name!r} is not Ed25519")

    thumbprint = hashlib.sha256(msgspec.json.encode(public, order="sorted")).hexdigest()
    return VerificationKey(kid=kid, alg=alg, algorithm=ALGORITHMS[alg], key=key, thumbprint=thumbprint)


def _modulus_bits(value: object) -> int:
    if not isinstance(value, str):
        raise UnusableKeyError("RSA key has no modulus n")
    try:
        modulus = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
    except (binascii.Error, ValueError) as exc:
        raise UnusableKeyError("RSA modulus n is not base64url") from exc
    return int.from_bytes(modulus, "big").bit_length()


def _import_public_key(kty: str, public: dict[str, Any]) -> VerificationKeyObject:
    if kty == "RSA":
        return RSAKey.import_key(public)  # type: ignore[arg-type]
    if kty == "EC":
        return ECKey.import_key(public)  # type: ignore[arg-type]
    return OKPKey.import_key(public)  # type: ignore[arg-type]


def parse_key_set(document: bytes) -> ParsedKeySet:
    """Read a JWKS document, raising ValueError when it is not `{"keys": [...]}` JSON at all."""
    try:
        body = msgspec.json.decode(document)
    except msgspec.DecodeError as exc:
        raise ValueError(f"JWKS is not valid JSON: {exc}") from exc
    if not isinstance(body, dict) or not isinstance(body.get("keys"), list):
        raise ValueError('JWKS is not a JSON object with a "keys" array')

    keys: list[VerificationKey] = []
    skipped: list[str] = []
    seen_kids: set[str] = set()
    for index, jwk in enumerate(body["keys"]):
        label = jwk.get("kid") if isinstance(jwk, dict) else None
        try:
            key = parse_key(jwk)
        except UnusableKeyError as exc:
            skipped.append(f"key #{index} (kid {label!r}): {exc}")
            continue
        if key.kid is not None and key.kid in seen_kids:
            skipped.append(f"key #{index} (kid {label!r}): duplicate kid")
            continue
        if key.kid is not None:
            seen_kids.add(key.kid)
        keys.append(key)
    return ParsedKeySet(keys=keys, skipped=skipped)
