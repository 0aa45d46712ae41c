import json
import threading

import pytest
from joserfc import jws
from joserfc.jwk import KeySet

from aibrain.auth.db import create_database_engine
from aibrain.auth.keys import KeyDecryptError, KeyStore, decrypt_private_key, encrypt_private_key
from aibrain.auth.migrations import migrate

SECRET = "test-secret-0123456789-abcdefghijklmnop"


class Clock:
    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def engine(tmp_path):
    engine = create_database_engine(f"sqlite:///{tmp_path / 'auth.db'}")
    migrate(engine)
    yield engine
    engine.dispose()


def test_encrypt_private_key_is_json_quoted_hex():
    stored = encrypt_private_key('{"kty":"OKP"}', SECRET)
    value = json.loads(stored)
    assert isinstance(value, str)
    assert bytes.fromhex(value)


def test_decrypt_private_key_round_trip():
    assert decrypt_private_key(encrypt_private_key('{"kty":"OKP"}', SECRET), SECRET) == '{"kty":"OKP"}'


def test_decrypt_private_key_other_secret_fails():
    stored = encrypt_private_key('{"kty":"OKP"}', SECRET)
    with pytest.raises(KeyDecryptError, match="BETTER_AUTH_SECRET"):
        decrypt_private_key(stored, SECRET + "x")


def test_decrypt_private_key_accepts_unencrypted_jwk():
    assert decrypt_private_key('{"kty":"OKP","d":"x"}', SECRET) == '{"kty":"OKP","d":"x"}'


@pytest.mark.parametrize("alg", ["RS256", "PS256", "ES256", "EdDSA"])
async def test_key_store_signs_verifiable_tokens(engine, alg):
    keys = KeyStore(engine, SECRET, alg=alg)
    keys.load()
    token = await keys.sign({"sub": "u1"})
    key_set = KeySet.import_key_set({"keys": keys.published()})
    result = jws.deserialize_compact(token, key_set, algorithms=[alg])
    assert json.loads(result.payload) == {"sub": "u1"}


async def test_key_store_header_has_only_alg_and_kid(engine):
    keys = KeyStore(engine, SECRET)
    keys.load()
    token = await keys.sign({"sub": "u1"})
    header = jws.extract_compact(token.encode()).protected
    assert set(header) == {"alg", "kid"}


def test_key_store_jwks_entry_public_only(engine):
    keys = KeyStore(engine, SECRET)
    keys.load()
    keys.create_key_sync()
    entry = keys.published()[0]
    assert entry["alg"] == "RS256"
    assert "d" not in entry
    assert "use" not in entry


def test_key_store_reused_across_restarts(engine):
    first = KeyStore(engine, SECRET)
    first.load()
    kid = first.create_key_sync().kid
    second = KeyStore(engine, SECRET)
    second.load()
    assert second.current_key().kid == kid


def test_key_store_concurrent_creation_makes_one_key(engine):
    stores = [KeyStore(engine, SECRET, alg="EdDSA") for _ in range(6)]
    for store in stores:
        store.load()
    threads = [threading.Thread(target=store.create_key_sync) for store in stores]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    check = KeyStore(engine, SECRET)
    check.load()
    assert len(check.published()) == 1


def test_key_store_rotation_within_grace(engine):
    clock = Clock()
    keys = KeyStore(engine, SECRET, alg="EdDSA", grace_period=100, clock=clock)
    keys.load()
    old = keys.create_key_sync().kid
    new = keys.rotate_sync().kid
    clock.now += 50
    assert {entry["kid"] for entry in keys.published()} == {old, new}


def test_key_store_rotation_after_grace(engine):
    clock = Clock()
    keys = KeyStore(engine, SECRET, alg="EdDSA", grace_period=100, clock=clock)
    keys.load()
    keys.create_key_sync()
    new = keys.rotate_sync().kid
    clock.now += 101
    assert [entry["kid"] for entry in keys.published()] == [new]


def test_key_store_rotation_signs_with_new_key(engine):
    keys = KeyStore(engine, SECRET, alg="EdDSA")
    keys.load()
    keys.create_key_sync()
    new = keys.rotate_sync().kid
    assert keys.current_key().kid == new


async def test_key_store_rotation_interval_replaces_expired_key(engine):
    clock = Clock()
    keys = KeyStore(engine, SECRET, alg="EdDSA", rotation_interval=60, clock=clock)
    keys.load()
    first = keys.create_key_sync().kid
    clock.now += 61
    await keys.sign({"sub": "u1"})
    assert keys.current_key().kid != first


async def test_key_store_changed_secret_creates_new_key(engine):
    old = KeyStore(engine, SECRET, alg="EdDSA")
    old.load()
    old_kid = old.create_key_sync().kid
    changed = KeyStore(engine, SECRET + "-changed", alg="EdDSA")
    changed.load()
    token = await changed.sign({"sub": "u1"})
    header = jws.extract_compact(token.encode()).protected
    assert header["kid"] != old_kid


async def test_key_store_changed_secret_keeps_old_key_published(engine):
    old = KeyStore(engine, SECRET, alg="EdDSA")
    old.load()
    old_kid = old.create_key_sync().kid
    changed = KeyStore(engine, SECRET + "-changed", alg="EdDSA")
    changed.load()
    await changed.sign({"sub": "u1"})
    assert old_kid in {entry["kid"] for entry in changed.published()}
