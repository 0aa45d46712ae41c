import hashlib
import unicodedata

import pytest

from aibrain.auth.passwords import Passwords, is_scrypt_hash, scrypt_hash, utf16_length

# Small argon2 costs keep the unit tests quick; the service uses the OWASP minimum by default.
FAST = {"memory_kib": 64, "iterations": 1, "threads": 1}


@pytest.mark.parametrize(
    ("text", "expected"),
    [("abc", 3), ("é", 1), ("😀", 2), ("😀" * 64, 128), ("😀" * 65, 130)],
)
def test_utf16_length_counts_like_javascript(text, expected):
    assert utf16_length(text) == expected


def test_scrypt_hash_matches_better_auth_recipe():
    salt = "0123456789abcdef0123456789abcdef"
    password = "ｐａｓｓword"  # Full-width letters, which NFKC folds to ASCII.
    normalized = unicodedata.normalize("NFKC", password).encode()
    key = hashlib.scrypt(normalized, salt=salt.encode(), n=16384, r=16, p=1, dklen=64, maxmem=64 * 1024 * 1024)
    assert scrypt_hash(password, salt) == f"{salt}:{key.hex()}"


def test_passwords_argon2id_round_trip():
    passwords = Passwords("argon2id", **FAST)
    stored = passwords.hash_sync("correct horse")
    assert stored.startswith("$argon2id$")
    assert passwords.verify_sync("correct horse", stored)
    assert not passwords.verify_sync("wrong horse", stored)


def test_passwords_verify_scrypt_hash_from_better_auth():
    passwords = Passwords("argon2id", **FAST)
    stored = scrypt_hash("password123")
    assert passwords.verify_sync("password123", stored)
    assert not passwords.verify_sync("password124", stored)


def test_passwords_scrypt_hash_needs_rehash_under_argon2id():
    passwords = Passwords("argon2id", **FAST)
    assert passwords.needs_rehash(scrypt_hash("password123"))


def test_passwords_scrypt_mode_keeps_scrypt():
    passwords = Passwords("scrypt", **FAST)
    stored = passwords.hash_sync("password123")
    assert is_scrypt_hash(stored)
    assert not passwords.needs_rehash(stored)


@pytest.mark.parametrize("stored", ["", "plain", "$argon2id$broken", "zz:zz", "a" * 32 + ":" + "b" * 127, None])
def test_passwords_malformed_hash_is_mismatch(stored):
    passwords = Passwords("argon2id", **FAST)
    assert passwords.verify_sync("password123", stored) is False
