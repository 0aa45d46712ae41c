"""Signing keys in Better Auth's `jwks` table, private halves encrypted under the secret.

Storage format (Better Auth 1.7): `publicKey` is the public JWK as JSON without alg, kid and use;
`privateKey` is the JSON string of hex(nonce || ciphertext || tag), XChaCha20-Poly1305 with a 24-byte
nonce under SHA-256 of the secret, over the private JWK's JSON. Keys are created once, reused across
restarts, and after rotation stay published for the grace period.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import secrets
import threading
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import msgspec
from Crypto.Cipher import ChaCha20_Poly1305
from joserfc import jws
from joserfc.errors import SecurityWarning
from joserfc.jwk import ECKey, OKPKey, RSAKey
from sqlalchemy import Connection, Engine, select, update

from aibrain.auth import db
from aibrain.auth.tokens import new_id
from aibrain.logs import shorten

log = logging.getLogger(__name__)

# Better Auth signs Ed25519 keys under the name "EdDSA", which RFC 9864 deprecates in favour of
# "Ed25519". Tokens must carry the name Better Auth's verifiers expect, so the warning is noise here.
warnings.filterwarnings("ignore", message="EdDSA is deprecated", category=SecurityWarning)

AnyKey = RSAKey | ECKey | OKPKey

# How long a running service trusts its in-memory copy of the table before reading it again, so
# that `aibrain keys rotate` run from another process takes effect without a restart.
RELOAD_INTERVAL = 10.0


class KeyDecryptError(ValueError):
    """Raised when a stored private key cannot be decrypted, usually because the secret changed."""


def _cipher_key(secret: str) -> bytes:
    return hashlib.sha256(secret.encode("utf-8")).digest()


def encrypt_private_key(private_jwk_json: str, secret: str) -> str:
    nonce = secrets.token_bytes(24)
    cipher = ChaCha20_Poly1305.new(key=_cipher_key(secret), nonce=nonce)
    ciphertext, tag = cipher.encrypt_and_digest(private_jwk_json.encode("utf-8"))
    return json.dumps((nonce + ciphertext + tag).hex())


def decrypt_private_key(stored: str, secret: str) -> str:
    """Return the private JWK JSON from a `privateKey` column value, encrypted or not."""
    try:
        value = json.loads(stored)
    except ValueError as error:
        raise KeyDecryptError("the stored private key is not JSON") from error
    if isinstance(value, dict):
        return stored  # Stored unencrypted (Better Auth's disablePrivateKeyEncryption).
    if not isinstance(value, str):
        raise KeyDecryptError("the stored private key is neither a JWK nor an encrypted string")
    if value.startswith("$ba$"):
        raise KeyDecryptError("the key is encrypted with a versioned BETTER_AUTH_SECRETS entry, which is not supported")
    try:
        blob = bytes.fromhex(value)
        cipher = ChaCha20_Poly1305.new(key=_cipher_key(secret), nonce=blob[:24])
        return cipher.decrypt_and_verify(blob[24:-16], blob[-16:]).decode("utf-8")
    except ValueError as error:
        raise KeyDecryptError("decryption failed; was BETTER_AUTH_SECRET changed?") from error


def generate_key(alg: str) -> AnyKey:
    if alg in ("RS256", "PS256"):
        return RSAKey.generate_key(2048, private=True)
    if alg == "ES256":
        return ECKey.generate_key("P-256", private=True)
    if alg == "EdDSA":
        return OKPKey.generate_key("Ed25519", private=True)
    raise ValueError(f"unsupported signing algorithm {alg!r}; use RS256, PS256, ES256 or EdDSA")


def _import_key(alg: str | None, jwk: dict[str, object]) -> AnyKey:
    kty = jwk.get("kty")
    if kty == "RSA":
        return RSAKey.import_key(jwk)  # type: ignore[arg-type]
    if kty == "EC":
        return ECKey.import_key(jwk)  # type: ignore[arg-type]
    if kty == "OKP":
        return OKPKey.import_key(jwk)  # type: ignore[arg-type]
    raise KeyDecryptError(f"unsupported key type {kty!r} for alg {alg!r}")


def _public_jwk(alg: str, kid: str, public: dict[str, object]) -> dict[str, object]:
    """Order the JWKS entry as Better Auth does: alg, crv (if any), the stored fields, kid."""
    entry: dict[str, object] = {"alg": alg}
    if "crv" in public:
        entry["crv"] = public["crv"]
    entry.update((name, value) for name, value in public.items() if name not in ("alg", "kid", "use"))
    entry["kid"] = kid
    return entry


@dataclass(frozen=True, slots=True)
class StoredKey:
    kid: str
    alg: str
    created_at: datetime
    expires_at: datetime | None
    public_jwk: dict[str, object]
    private_json: str  # The stored (encrypted) column value, decrypted only when signing.


class KeyStore:
    """Load, create, rotate and publish signing keys; sign JWTs with the current one."""

    def __init__(
        self,
        engine: Engine,
        secret: str,
        *,
        alg: str = "RS256",
        rotation_interval: int | None = None,
        grace_period: int = 2_592_000,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._engine = engine
        self._secret = secret
        self.alg = alg
        self._rotation_interval = rotation_interval
        self._grace_period = grace_period
        self._clock = clock
        self._keys: list[StoredKey] = []
        self._loaded_at = float("-inf")
        self._signers: dict[str, AnyKey] = {}
        self._undecryptable: set[str] = set()
        self._create_lock = asyncio.Lock()
        self._thread_lock = threading.Lock()
        self._jwks_body: bytes | None = None
        self._jwks_built_at = float("-inf")

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self._clock(), UTC)

    # Loading and choosing

    def load(self) -> None:
        """Read every row of the jwks table into memory."""
        with self._engine.connect() as connection:
            rows = connection.execute(select(db.jwks).order_by(db.jwks.c.createdAt)).all()
        keys = []
        for row in rows:
            try:
                public = json.loads(row.publicKey)
            except ValueError:
                log.error("skipping signing key %s: its publicKey column is not JSON", shorten(row.id))
                continue
            alg = row.alg or self.alg
            expires = db.from_iso(row.expiresAt) if row.expiresAt else None
            keys.append(StoredKey(row.id, alg, db.from_iso(row.createdAt), expires, public, row.privateKey))
        self._keys = keys
        self._loaded_at = self._clock()
        self._jwks_body = None

    def check_private_keys(self) -> list[str]:
        """Try to decrypt every live key now, so a changed secret shows at start-up; return the failed kids.

        Keys that fail are never used for signing; their public halves stay published, so tokens they
        signed keep verifying until they expire.
        """
        now = self._now()
        failed = []
        for key in self._keys:
            if not self._live(key, now) or key.kid in self._signers:
                continue
            try:
                self._signer(key)
            except KeyDecryptError as error:
                self._undecryptable.add(key.kid)
                failed.append(key.kid)
                log.error(
                    "signing key %s cannot be decrypted (%s); a new key will sign from now on. "
                    "Restore the previous BETTER_AUTH_SECRET to use it again",
                    key.kid,
                    error,
                )
        return failed

    def _live(self, key: StoredKey, now: datetime) -> bool:
        return key.expires_at is None or key.expires_at > now

    def current_key(self) -> StoredKey | None:
        """Pick the signing key as Better Auth does: newest live key of the configured alg, else any."""
        now = self._now()
        live = [key for key in self._keys if self._live(key, now) and key.kid not in self._undecryptable]
        for key in reversed(live):
            if key.alg == self.alg:
                return key
        return live[-1] if live else None

    def published(self) -> list[dict[str, object]]:
        """Return the public JWKs of live keys and of expired keys still inside the grace period."""
        now = self._now().timestamp()
        entries = []
        for key in self._keys:
            if key.expires_at is None or key.expires_at.timestamp() + self._grace_period > now:
                entries.append(_public_jwk(key.alg, key.kid, key.public_jwk))
        return entries

    def jwks_body(self) -> bytes:
        """Return the encoded JWKS document, rebuilt after a reload and whenever it is over a second old."""
        if self._jwks_body is None or self._clock() - self._jwks_built_at >= 1.0:
            self._jwks_body = msgspec.json.encode({"keys": self.published()})
            self._jwks_built_at = self._clock()
        return self._jwks_body

    def stale(self) -> bool:
        return self._clock() - self._loaded_at >= RELOAD_INTERVAL

    # Creating and rotating

    def create_key_sync(self, *, expire_current: bool = False) -> StoredKey:
        """Insert a new key, or adopt a live one another process just made; optionally expire the rest.

        The check and the insert share one write transaction, so concurrent first requests (or a
        service and a CLI starting together) create exactly one key.
        """
        with self._thread_lock, db.write_transaction(self._engine) as connection:
            now = self._now()
            if expire_current:
                connection.execute(
                    update(db.jwks).where(db.jwks.c.expiresAt.is_(None)).values(expiresAt=db.to_iso(now))
                )
                adopted = None
            else:
                adopted = self._newest_usable_kid(connection, now)
            if adopted is None:
                key = generate_key(self.alg)
                kid = new_id()
                connection.execute(db.jwks.insert().values(**self._row(kid, key, now)))

        self.load()
        if adopted is not None:
            return next(k for k in self._keys if k.kid == adopted)
        self._signers[kid] = key
        log.info("created signing key %s (%s)", kid, self.alg)
        return next(k for k in self._keys if k.kid == kid)

    def _newest_usable_kid(self, connection: Connection, now: datetime) -> str | None:
        newest = connection.execute(
            select(db.jwks.c.id, db.jwks.c.expiresAt).order_by(db.jwks.c.createdAt.desc()).limit(1)
        ).first()
        if newest is None or newest.id in self._undecryptable:
            return None
        if newest.expiresAt is not None and db.from_iso(newest.expiresAt) <= now:
            return None
        return str(newest.id)

    def _row(self, kid: str, key: AnyKey, now: datetime) -> dict[str, object]:
        public = key.as_dict(private=False)
        private = json.dumps(key.as_dict(private=True), separators=(",", ":"))
        expires = db.iso_after(now, self._rotation_interval) if self._rotation_interval else None
        return {
            "id": kid,
            "publicKey": json.dumps(public, separators=(",", ":")),
            "privateKey": encrypt_private_key(private, self._secret),
            "createdAt": db.to_iso(now),
            "expiresAt": expires,
            "alg": self.alg,
            "crv": public.get("crv"),
        }

    def rotate_sync(self) -> StoredKey:
        """Expire every live key now (they stay published for the grace period) and add a new one."""
        key = self.create_key_sync(expire_current=True)
        log.info("rotated signing keys; new kid %s, old keys published for %d s", key.kid, self._grace_period)
        return key

    def _signer(self, key: StoredKey) -> AnyKey:
        signer = self._signers.get(key.kid)
        if signer is None:
            private = json.loads(decrypt_private_key(key.private_json, self._secret))
            signer = _import_key(key.alg, private)
            self._signers[key.kid] = signer
        return signer

    async def signing_key(self) -> tuple[StoredKey, AnyKey]:
        """Return the current key and its private half, creating a key first when none is usable."""
        if self.stale():
            await asyncio.to_thread(self.load)
        while True:
            key = self.current_key()
            if key is None:
                async with self._create_lock:
                    if self.current_key() is None:
                        await asyncio.to_thread(self.create_key_sync)
                continue
            try:
                return key, self._signer(key)
            except KeyDecryptError as error:
                log.error("cannot use signing key %s: %s; creating a new key", key.kid, error)
                self._undecryptable.add(key.kid)

    async def sign(self, claims: dict[str, object]) -> str:
        key, signer = await self.signing_key()
        header = {"alg": key.alg, "kid": key.kid}
        return jws.serialize_compact(header, msgspec.json.encode(claims), signer, algorithms=[key.alg])
