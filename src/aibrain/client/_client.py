"""The blocking client."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from types import TracebackType
from typing import Any

import httpx

from aibrain.client import _base
from aibrain.client._base import Clock, bearer, checked
from aibrain.client._exceptions import AuthenticationError, transport_error
from aibrain.client._models import Event, Page, Session, User, decode_event, decode_page, decode_signed_in, decode_token, decode_user


class Client:
    """A client of aibrain's auth service and events API, holding one set of credentials.

    Sign in with `sign_up()` or `sign_in()`, or pass an existing session token (`token=`) or a JWT
    (`jwt=`). With a session token the client fetches JWTs itself: before the current one expires,
    and once more after a 401 TOKEN_EXPIRED from the API. A client made with `jwt=` alone cannot
    refresh, so it raises AuthenticationError once that JWT expires.

        with Client() as client:
            client.sign_in("ada@example.com", "correct horse battery")
            client.add_event("note", {"text": "hello"})
            for event in client.events(type="note"):
                print(event.created_at, event.data)

    `transport` takes any httpx transport, such as httpx.MockTransport in tests. `clock` returns the
    current Unix time and decides when a JWT is due for refresh. The client is safe to share
    between threads.
    """

    def __init__(
        self,
        auth_url: str = _base.DEFAULT_AUTH_URL,
        api_url: str = _base.DEFAULT_API_URL,
        *,
        token: str | None = None,
        jwt: str | None = None,
        transport: httpx.BaseTransport | None = None,
        timeout: float = _base.DEFAULT_TIMEOUT,
        clock: Clock | None = None,
    ) -> None:
        self._state = _base.ClientState(auth_url, api_url, token=token, jwt=jwt, clock=clock)
        self._http = httpx.Client(
            transport=transport,
            timeout=timeout,
            cookies=_base.no_cookies(),
            headers={"user-agent": _base.USER_AGENT},
        )
        self._refresh_lock = threading.Lock()

    def __repr__(self) -> str:
        return self._state.describe(type(self))

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the connections. The credentials stay readable afterwards."""
        self._http.close()

    @property
    def session_token(self) -> str | None:
        """The raw session token, to store and pass later as `Client(token=...)`."""
        return self._state.session_token

    @property
    def jwt(self) -> str | None:
        """The JWT the next API request sends, unless it is due for refresh first."""
        return self._state.jwt

    # Auth service

    def sign_up(self, email: str, password: str, name: str = "") -> Session:
        """Create an account, sign in to it and return the new Session.

        Raises Conflict when the email already has an account.
        """
        return self._sign_in("/sign-up/email", {"name": name, "email": email, "password": password}, "sign-up")

    def sign_in(self, email: str, password: str) -> Session:
        """Sign in with email and password and return the new Session.

        Raises AuthenticationError for an unknown email or a wrong password, which the server does
        not tell apart.
        """
        return self._sign_in("/sign-in/email", {"email": email, "password": password}, "sign-in")

    def sign_out(self) -> None:
        """End the session on the auth service and forget the credentials."""
        if self._state.session_token is not None:
            self._send("POST", self._state.auth_url + "/sign-out", headers=bearer(self._state.session_token))
        self._state.sign_out()

    def _sign_in(self, path: str, body: dict[str, str], what: str) -> Session:
        response = self._send("POST", self._state.auth_url + path, json=body)
        session, jwt = decode_signed_in(response.content, what)
        self._state.session_token = session.token
        self._state.set_jwt(jwt)
        return session

    # Events API

    def me(self) -> User:
        """Fetch the signed-in user's profile from the events API (GET /me)."""
        response = self._call_api("GET", "/me")
        return decode_user(response.content)

    def add_event(self, type: str, data: Any) -> Event:
        """Store an event of `type` with any JSON value as `data`, and return it as stored."""
        response = self._call_api("POST", "/events", json={"type": type, "data": data})
        return decode_event(response.content)

    def events_page(self, type: str | None = None, limit: int = 50, cursor: str | None = None) -> Page:
        """Return one page of events, newest first, optionally of one `type` only.

        Pass the previous page's `next_cursor` as `cursor` to get the page after it.
        """
        params = _base.page_params(type, limit, cursor)
        response = self._call_api("GET", "/events", params=params)
        return decode_page(response.content)

    def events(self, type: str | None = None, limit: int = 50) -> Iterator[Event]:
        """Iterate over all events, newest first, fetching `limit` per request as iteration goes on."""
        cursor = None
        while True:
            page = self.events_page(type, limit, cursor)
            yield from page.events
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

    # Requests and token refresh

    def _send(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self._http.request(method, url, **kwargs)
        except httpx.TransportError as exc:
            raise transport_error(exc, method, url) from exc
        return checked(response, self._state.clock)

    def _call_api(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        url = self._state.api_url + path
        _base.require_credentials(self._state.jwt, self._state.session_token)
        jwt = self._refresh_jwt(self._state.jwt) if self._state.needs_refresh() else self._state.jwt
        try:
            response = self._http.request(method, url, headers=bearer(jwt), **kwargs)
            if _base.is_expired_jwt(response) and self._state.session_token is not None:
                jwt = self._refresh_jwt(jwt)
                response = self._http.request(method, url, headers=bearer(jwt), **kwargs)
        except httpx.TransportError as exc:
            raise transport_error(exc, method, url) from exc
        return checked(response, self._state.clock)

    def _refresh_jwt(self, used_jwt: str | None) -> str:
        with self._refresh_lock:
            replacement = self._state.replacement_for(used_jwt)
            if replacement is not None:
                return replacement
            try:
                response = self._send("GET", self._state.auth_url + "/token", headers=bearer(self._state.session_token))
            except AuthenticationError as exc:
                raise AuthenticationError(
                    exc.status, exc.code, "the session has ended or is invalid; sign in again"
                ) from exc
            jwt = decode_token(response.content)
            self._state.set_jwt(jwt)
            return jwt
