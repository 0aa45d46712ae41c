"""AsyncClient against real auth and events services."""

from __future__ import annotations

import asyncio

import pytest

from aibrain.client import AsyncClient, AuthenticationError, Conflict, TransportError
from tests.client.support import PASSWORD, AsyncRecordingTransport, FakeClock, claims_of, expired_copy
from tests.servers import free_port


async def test_async_round_trip(services, unique_email):
    async with AsyncClient(services.auth.url, services.api.url) as client:
        session = await client.sign_up(unique_email, PASSWORD)
        created = await client.add_event("note", {"text": "hello"})
        me = await client.me()
        listed = [event async for event in client.events()]
    assert me.id == session.user.id
    assert listed == [created]


async def test_async_events_iterates_across_three_pages(services, unique_email):
    async with AsyncClient(services.auth.url, services.api.url) as client:
        await client.sign_up(unique_email, PASSWORD)
        for number in range(7):
            await client.add_event("count", number)
        numbers = [event.data async for event in client.events(limit=3)]
        first_page = await client.events_page(limit=3)
    assert numbers == [6, 5, 4, 3, 2, 1, 0]
    assert first_page.next_cursor is not None


async def test_async_sign_up_duplicate_raises_conflict(services, unique_email):
    async with AsyncClient(services.auth.url, services.api.url) as client:
        await client.sign_up(unique_email, PASSWORD)
        with pytest.raises(Conflict) as caught:
            await client.sign_up(unique_email, PASSWORD)
    assert caught.value.code == "USER_ALREADY_EXISTS_USE_ANOTHER_EMAIL"


async def test_async_sign_in_wrong_password_raises(services, unique_email):
    async with AsyncClient(services.auth.url, services.api.url) as client:
        await client.sign_up(unique_email, PASSWORD)
    async with AsyncClient(services.auth.url, services.api.url) as client:
        with pytest.raises(AuthenticationError, match="INVALID_EMAIL_OR_PASSWORD"):
            await client.sign_in(unique_email, "wrong-password")


async def test_async_sign_out_forgets_credentials(services, unique_email):
    async with AsyncClient(services.auth.url, services.api.url) as client:
        await client.sign_up(unique_email, PASSWORD)
        await client.sign_out()
        with pytest.raises(AuthenticationError, match="NOT_SIGNED_IN"):
            await client.me()


async def test_async_refresh_after_token_expired(services, unique_email):
    async with AsyncClient(services.auth.url, services.api.url) as client:
        session = await client.sign_up(unique_email, PASSWORD)
        jwt = client.jwt
    expired = await asyncio.to_thread(expired_copy, jwt, services.data_dir)

    clock = FakeClock()
    clock.now = claims_of(expired)["iat"]
    transport = AsyncRecordingTransport()
    async with AsyncClient(
        services.auth.url, services.api.url, token=session.token, jwt=expired, transport=transport, clock=clock
    ) as client:
        me = await client.me()
    assert me.id == session.user.id
    assert transport.paths == ["/me", "/api/auth/token", "/me"]


async def test_async_concurrent_tasks_share_one_refresh(services, unique_email):
    async with AsyncClient(services.auth.url, services.api.url) as client:
        session = await client.sign_up(unique_email, PASSWORD)

    transport = AsyncRecordingTransport()
    async with AsyncClient(services.auth.url, services.api.url, token=session.token, transport=transport) as client:
        users = await asyncio.gather(*(client.me() for _ in range(5)))
    assert {user.id for user in users} == {session.user.id}
    assert transport.paths.count("/api/auth/token") == 1


async def test_async_repr_hides_secrets(services, unique_email):
    async with AsyncClient(services.auth.url, services.api.url) as client:
        session = await client.sign_up(unique_email, PASSWORD)
        text = repr(client)
        jwt = client.jwt
    assert session.token not in text
    assert jwt not in text


async def test_async_transport_error_wraps_closed_port():
    closed = f"http://127.0.0.1:{free_port()}"
    async with AsyncClient(closed, closed, jwt="a.b.c") as client:
        with pytest.raises(TransportError, match="ConnectError"):
            await client.me()
