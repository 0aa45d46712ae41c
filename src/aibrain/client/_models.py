"""Typed results of the SDK and their decoding from the services' JSON bodies.

Public results are frozen dataclasses. The auth service sends Better Auth's camelCase field names, so
its bodies are decoded through private msgspec Structs first. The events API's snake_case bodies
decode straight into the dataclasses.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

import msgspec

from aibrain.client._exceptions import DecodeError

T = TypeVar("T")


@dataclass(frozen=True)
class User:
    """An account. `created_at` and `updated_at` are None in the result of `me()`, which omits them."""

    id: str
    email: str
    name: str
    email_verified: bool
    image: str | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None


@dataclass(frozen=True)
class Session:
    """A signed-in session: its user and expiry; `token` is the raw session token, kept out of repr."""

    id: str
    user: User
    expires_at: datetime
    created_at: datetime
    token: str = field(repr=False)


@dataclass(frozen=True)
class Event:
    """One stored event; `data` is the decoded JSON value and `created_at` is in UTC."""

    id: int
    type: str
    data: Any
    created_at: datetime


@dataclass(frozen=True)
class Page:
    """One page of events, newest first; `next_cursor` is None on the last page."""

    events: tuple[Event, ...]
    next_cursor: str | None


class _AuthUser(msgspec.Struct, rename="camel"):
    id: str
    email: str
    name: str
    email_verified: bool
    created_at: datetime
    updated_at: datetime
    image: str | None = None


class _AuthSession(msgspec.Struct, rename="camel"):
    id: str
    token: str
    expires_at: datetime
    created_at: datetime


class _SignedIn(msgspec.Struct):
    token: str
    user: _AuthUser
    session: _AuthSession
    jwt: str


class _TokenBody(msgspec.Struct):
    token: str


def _decode(content: bytes, kind: type[T], what: str) -> T:
    try:
        return msgspec.json.decode(content, type=kind)
    except msgspec.DecodeError as exc:
        raise DecodeError(f"the {what} response is not the expected JSON: {exc}") from None


def decode_signed_in(content: bytes, what: str) -> tuple[Session, str]:
    """Decode a sign-up or sign-in body into the Session and the JWT that came with it."""
    body = _decode(content, _SignedIn, what)
    wire = body.user
    user = User(wire.id, wire.email, wire.name, wire.email_verified, wire.image, wire.created_at, wire.updated_at)
    session = Session(body.session.id, user, body.session.expires_at, body.session.created_at, token=body.token)
    return session, body.jwt


def decode_token(content: bytes) -> str:
    """Decode the body of GET /api/auth/token into the JWT."""
    return _decode(content, _TokenBody, "token").token


def decode_user(content: bytes) -> User:
    return _decode(content, User, "me")


def decode_event(content: bytes) -> Event:
    return _decode(content, Event, "add_event")


def decode_page(content: bytes) -> Page:
    return _decode(content, Page, "events")
