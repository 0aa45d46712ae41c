"""aibrain's Python SDK: sign in, then store and read events, with httpx as its only dependency.

    from aibrain.client import Client

    with Client("http://127.0.0.1:3000", "http://127.0.0.1:8080") as client:
        client.sign_up("ada@example.com", "correct horse battery", name="Ada")
        client.add_event("note", {"text": "hello"})
        print([event.data for event in client.events()])

Everything public is importable from here; the underscore modules are private.
"""

from aibrain.client._async_client import AsyncClient
from aibrain.client._client import Client
from aibrain.client._exceptions import (
    AIBrainError,
    APIError,
    AuthenticationError,
    Conflict,
    DecodeError,
    NotFound,
    PermissionDenied,
    RateLimited,
    ServiceUnavailable,
    TransportError,
)
from aibrain.client._models import Event, Page, Session, User

__all__ = [
    "AIBrainError",
    "APIError",
    "AsyncClient",
    "AuthenticationError",
    "Client",
    "Conflict",
    "DecodeError",
    "Event",
    "NotFound",
    "Page",
    "PermissionDenied",
    "RateLimited",
    "ServiceUnavailable",
    "Session",
    "TransportError",
    "User",
]
