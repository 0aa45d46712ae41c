import pytest

from aibrain.auth.db import create_database_engine
from aibrain.auth.jwts import REUSE_SECONDS, JwtMinter
from aibrain.auth.keys import KeyStore
from aibrain.auth.migrations import migrate

SECRET = "test-secret-0123456789-abcdefghijklmnop"
USER = {"name": "A", "email": "a@example.com", "emailVerified": False, "image": None, "id": "u1"}


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def setup(tmp_path):
    engine = create_database_engine(f"sqlite:///{tmp_path / 'auth.db'}")
    migrate(engine)
    clock = Clock()
    keys = KeyStore(engine, SECRET, alg="EdDSA", clock=clock)
    keys.load()
    minter = JwtMinter(keys, issuer="http://a", audience="http://a", expires_in=900, clock=clock)
    yield minter, clock
    engine.dispose()


async def test_jwt_minter_reuses_recent_token(setup):
    minter, clock = setup
    first = await minter.mint(USER)
    clock.now += REUSE_SECONDS - 1
    assert await minter.mint(USER) == first


async def test_jwt_minter_mints_again_after_window(setup):
    minter, clock = setup
    first = await minter.mint(USER)
    clock.now += REUSE_SECONDS
    assert await minter.mint(USER) != first


async def test_jwt_minter_changed_user_gets_new_token(setup):
    minter, _clock = setup
    first = await minter.mint(USER)
    assert await minter.mint({**USER, "name": "B"}) != first


async def test_jwt_minter_forget_drops_reuse(setup):
    minter, clock = setup
    first = await minter.mint(USER)
    clock.now += 1
    minter.forget()
    assert await minter.mint(USER) != first


async def test_jwt_minter_rotation_stops_reuse(setup):
    minter, _clock = setup
    first = await minter.mint(USER)
    minter._keys.rotate_sync()
    assert await minter.mint(USER) != first
