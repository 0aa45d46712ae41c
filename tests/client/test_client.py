"""Client against real auth and events services: sign-in, events, paging, errors and secrets."""

from __future__ import annotations

import datetime

import pytest

from aibrain.client import (
    APIError,
    AuthenticationError,
    Client,
    Conflict,
    Event,
    NotFound,
    Page,
    Session,
    TransportError,
)
from tests.client.support import PASSWORD, RecordingTransport
from tests.servers import free_port


@pytest.fixture
def client(services):
    with Client(services.auth.url, services.api.url) as sdk:
        yield sdk


def test_sign_up_returns_session_with_user(client, unique_email):
    session = client.sign_up(unique_email, PASSWORD, name="Ada")
    assert isinstance(session, Session)
    assert session.user.email == unique_email
    assert session.user.name == "Ada"
    assert session.expires_at > datetime.datetime.now(datetime.UTC)


def test_sign_up_stores_both_tokens(client, unique_email):
    session = client.sign_up(unique_email, PASSWORD)
    assert client.session_token == session.token
    assert client.jwt is not None


def test_me_returns_signed_up_user(client, unique_email):
    session = client.sign_up(unique_email, PASSWORD, name="Ada")
    me = client.me()
    assert me.id == session.user.id
    assert me.email == unique_email
    assert me.name == "Ada"


def test_add_event_round_trip(client, unique_email):
    client.sign_up(unique_email, PASSWORD)
    created = client.add_event("note", {"text": "hello", "tags": ["a", "b"]})
    listed = list(client.events(type="note"))
    assert listed == [created]


def test_add_event_returns_typed_event(client, unique_email):
    client.sign_up(unique_email, PASSWORD)
    event = client.add_event("note", [1, 2.5, None])
    assert isinstance(event, Event)
    assert event.type == "note"
    assert event.data == [1, 2.5, None]
    assert event.created_at.utcoffset() == datetime.timedelta(0)


def test_events_page_returns_next_cursor(client, unique_email):
    client.sign_up(unique_email, PASSWORD)
    for number in range(3):
        client.add_event("count", number)
    first = client.events_page(limit=2)
    second = client.events_page(limit=2, cursor=first.next_cursor)
    assert isinstance(first, Page)
    assert [event.data for event in first.events] == [2, 1]
    assert [event.data for event in second.events] == [0]
    assert second.next_cursor is None


def test_events_iterates_across_three_pages(client, unique_email):
    client.sign_up(unique_email, PASSWORD)
    for number in range(7):
        client.add_event("count", number)
    assert [event.data for event in client.events(limit=3)] == [6, 5, 4, 3, 2, 1, 0]


def test_events_fetches_pages_lazily(services, unique_email):
    transport = RecordingTransport()
    with Client(services.auth.url, services.api.url, transport=transport) as client:
        client.sign_up(unique_email, PASSWORD)
        for number in range(5):
            client.add_event("count", number)
        transport.paths.clear()

        iterator = client.events(limit=2)
        assert next(iterator).data == 4
        assert transport.paths == ["/events"]
        assert [event.data for event in iterator] == [3, 2, 1, 0]
        assert transport.paths == ["/events"] * 3


def test_events_filters_by_type(client, unique_email):
    client.sign_up(unique_email, PASSWORD)
    client.add_event("note", "kept")
    client.add_event("other", "skipped")
    assert [event.data for event in client.events(type="note")] == ["kept"]


def test_events_empty_for_new_user(client, unique_email):
    client.sign_up(unique_email, PASSWORD)
    assert list(client.events()) == []


def test_events_isolated_between_users(services, unique_email):
    with Client(services.auth.url, services.api.url) as first, Client(services.auth.url, services.api.url) as second:
        first.sign_up(unique_email, PASSWORD)
        second.sign_up("second-" + unique_email, PASSWORD)
        first.add_event("secret", "first's")
        assert list(second.events()) == []


def test_sign_up_duplicate_raises_conflict(client, unique_email):
    client.sign_up(unique_email, PASSWORD)
    with pytest.raises(Conflict, match="USER_ALREADY_EXISTS_USE_ANOTHER_EMAIL") as caught:
        client.sign_up(unique_email, PASSWORD)
    assert caught.value.status == 422
    assert caught.value.code == "USER_ALREADY_EXISTS_USE_ANOTHER_EMAIL"


def test_sign_in_wrong_password_raises_authentication_error(services, unique_email):
    with Client(services.auth.url, services.api.url) as client:
        client.sign_up(unique_email, PASSWORD)
    with Client(services.auth.url, services.api.url) as client, pytest.raises(AuthenticationError) as caught:
        client.sign_in(unique_email, "wrong-password")
    assert caught.value.code == "INVALID_EMAIL_OR_PASSWORD"
    assert str(caught.value) == "HTTP 401 INVALID_EMAIL_OR_PASSWORD: Invalid email or password"


def test_sign_in_after_sign_up_sees_same_events(services, unique_email):
    with Client(services.auth.url, services.api.url) as client:
        client.sign_up(unique_email, PASSWORD)
        created = client.add_event("note", "kept")
    with Client(services.auth.url, services.api.url) as client:
        client.sign_in(unique_email, PASSWORD)
        assert list(client.events()) == [created]


def test_client_from_session_token_fetches_jwt(services, unique_email):
    with Client(services.auth.url, services.api.url) as client:
        session = client.sign_up(unique_email, PASSWORD)
    with Client(services.auth.url, services.api.url, token=session.token) as client:
        assert client.me().id == session.user.id


def test_client_from_jwt_only(services, unique_email):
    with Client(services.auth.url, services.api.url) as client:
        session = client.sign_up(unique_email, PASSWORD)
        jwt = client.jwt
    with Client(services.auth.url, services.api.url, jwt=jwt) as client:
        assert client.me().id == session.user.id


def test_sign_out_ends_session_on_server(services, unique_email):
    with Client(services.auth.url, services.api.url) as client:
        session = client.sign_up(unique_email, PASSWORD)
        client.sign_out()
        assert client.session_token is None
    with Client(services.auth.url, services.api.url, token=session.token) as client:
        with pytest.raises(AuthenticationError, match="UNAUTHORIZED"):
            client.me()


def test_me_without_credentials_raises_authentication_error(client):
    with pytest.raises(AuthenticationError, match="call sign_in") as caught:
        client.me()
    assert caught.value.code == "NOT_SIGNED_IN"


def test_events_page_invalid_limit_raises_api_error(client, unique_email):
    client.sign_up(unique_email, PASSWORD)
    with pytest.raises(APIError, match="limit must be an integer") as caught:
        client.events_page(limit=0)
    assert caught.value.status == 400
    assert caught.value.code == "INVALID_QUERY"


def test_events_page_invalid_cursor_raises_api_error(client, unique_email):
    client.sign_up(unique_email, PASSWORD)
    with pytest.raises(APIError) as caught:
        client.events_page(cursor="not-a-cursor")
    assert caught.value.code == "INVALID_CURSOR"


def test_client_wrong_api_url_raises_not_found(services, unique_email):
    # The auth service has no /me, so pointing api_url at it gives a real 404.
    with Client(services.auth.url, services.auth.url) as client:
        client.sign_up(unique_email, PASSWORD)
        with pytest.raises(NotFound) as caught:
            client.me()
    assert caught.value.code == "NOT_FOUND"


def test_repr_hides_session_token_and_jwt(client, unique_email):
    session = client.sign_up(unique_email, PASSWORD)
    text = repr(client)
    assert session.token not in text
    assert client.jwt not in text
    assert "signed_in=True" in text


def test_session_repr_hides_token(client, unique_email):
    session = client.sign_up(unique_email, PASSWORD)
    assert session.token not in repr(session)


def test_client_from_token_repr_hides_it():
    token, jwt = "session-token-value", "header.payload.signature"
    with Client(token=token, jwt=jwt) as client:
        text = repr(client)
    assert token not in text
    assert jwt not in text


def test_transport_error_wraps_closed_port():
    closed = f"http://127.0.0.1:{free_port()}"
    with Client(closed, closed) as client, pytest.raises(TransportError, match="ConnectError") as caught:
        client.sign_in("nobody@example.com", PASSWORD)
    assert caught.value.url == f"{closed}/api/auth/sign-in/email"
    assert caught.value.method == "POST"


def test_transport_error_message_hides_password():
    closed = f"http://127.0.0.1:{free_port()}"
    with Client(closed, closed) as client, pytest.raises(TransportError) as caught:
        client.sign_in("nobody@example.com", "very-secret-password")
    assert "very-secret-password" not in str(caught.value)


def test_auth_url_accepts_base_path(services, unique_email):
    with Client(services.auth.url + "/api/auth/", services.api.url) as client:
        assert client.sign_up(unique_email, PASSWORD).user.email == unique_email
