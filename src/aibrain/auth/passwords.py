"""Password hashing: argon2id for new hashes, Better Auth's scrypt format verified and upgraded.

Hashes are self-describing: argon2 hashes start with `$argon2id$` and carry their parameters, and
Better Auth's scrypt hashes are `<salt hex, 32 chars>:<key hex, 128 chars>`. A stored value of any
other shape never matches and never raises.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import secrets
import unicodedata
from concurrent.futures import ThreadPoolExecutor
from typing import Literal

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

# Better Auth 1.7 limits, counted in UTF-16 code units as JavaScript's String.length counts them.
MIN_PASSWORD_LENGTH = 8
MAX_PASSWORD_LENGTH = 128

# Better Auth's scrypt parameters (N=16384, r=16, p=1, 64-byte key), which need 32 MiB of memory.
_SCRYPT = {"n": 16384, "r": 16, "p": 1, "dklen": 64, "maxmem": 64 * 1024 * 1024}


def utf16_length(text: str) -> int:
    """Return the length JavaScript reports for `text`: characters beyond the BMP count twice."""
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


def scrypt_hash(password: str, salt_hex: str | None = None) -> str:
    """Hash like Better Auth: NFKC password, the salt's hex *text* as the salt bytes."""
    salt_hex = salt_hex or secrets.token_hex(16)
    normalized = unicodedata.normalize("NFKC", password).encode("utf-8", "surrogatepass")
    key = hashlib.scrypt(normalized, salt=salt_hex.encode("ascii"), **_SCRYPT)
    return f"{salt_hex}:{key.hex()}"


def _scrypt_verify(password: str, stored: str) -> bool:
    salt_hex, _, key_hex = stored.partition(":")
    if len(salt_hex) != 32 or len(key_hex) != 128:
        return False
    return hmac.compare_digest(scrypt_hash(password, salt_hex), stored)


def is_scrypt_hash(stored: str) -> bool:
    salt_hex, separator, key_hex = stored.partition(":")
    return bool(separator) and len(salt_hex) == 32 and len(key_hex) == 128


class Passwords:
    """Hash and verify passwords on a thread pool, so the event loop keeps serving meanwhile.

    argon2-cffi and hashlib.scrypt release the GIL, so `threads` hashes run truly in parallel. More
    threads than cores would only queue work inside the kernel instead of in the pool.
    """

    def __init__(
        self,
        scheme: Literal["argon2id", "scrypt"] = "argon2id",
        *,
        memory_kib: int = 7_168,
        iterations: int = 5,
        threads: int = 2,
    ) -> None:
        self.scheme = scheme
        self._argon2 = PasswordHasher(
            time_cost=iterations, memory_cost=memory_kib, parallelism=1, hash_len=32, salt_len=16, type=Type.ID
        )
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="password-hash")
        # Verified against for unknown emails, so that they cost as much time as a wrong password.
        self._dummy_hash = self.hash_sync(secrets.token_urlsafe(16))

    def hash_sync(self, password: str) -> str:
        if self.scheme == "scrypt":
            return scrypt_hash(password)
        return self._argon2.hash(password)

    def verify_sync(self, password: str, stored: str | None) -> bool:
        """Return whether `password` matches `stored`; an unknown or broken hash is a mismatch."""
        if stored is None:
            self.verify_sync(password, self._dummy_hash)
            return False
        if stored.startswith("$argon2"):
            try:
                return self._argon2.verify(stored, password)
            except (VerifyMismatchError, VerificationError, InvalidHashError):
                return False
        if is_scrypt_hash(stored):
            return _scrypt_verify(password, stored)
        self.verify_sync(password, self._dummy_hash)
        return False

    def needs_rehash(self, stored: str) -> bool:
        """Return whether a verified hash should be replaced with one of the configured scheme."""
        if self.scheme == "scrypt":
            return not is_scrypt_hash(stored)
        if not stored.startswith("$argon2"):
            return True
        try:
            return self._argon2.check_needs_rehash(stored)
        except InvalidHashError:
            return True

    async def hash(self, password: str) -> str:
        return await asyncio.get_running_loop().run_in_executor(self._pool, self.hash_sync, password)

    async def verify(self, password: str, stored: str | None) -> bool:
        return await asyncio.get_running_loop().run_in_executor(self._pool, self.verify_sync, password, stored)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
