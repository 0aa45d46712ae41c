"""Opaque page cursors for `GET /events`: the (created_at, id) of the last event of a page.

A cursor is base64url (no padding) of the JSON array `[created_at, id]`. Clients must treat it as
opaque; the server rejects anything it did not produce in this form.
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import Final

import msgspec

MAX_CURSOR_LENGTH: Final = 128
MAX_EVENT_ID: Final = 2**63 - 1  # SQLite's largest rowid

_TIMESTAMP = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z")
_BASE64URL = re.compile(r"[A-Za-z0-9_-]+")


class CursorError(ValueError):
    """Raised when a cursor is not one this server produced."""


def encode_cursor(created_at: str, event_id: int) -> str:
    """Return the cursor that continues after the event with this created_at and id."""
    raw = msgspec.json.encode((created_at, event_id))
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def decode_cursor(cursor: str) -> tuple[str, int]:
    """Return the (created_at, id) position of a cursor, or raise CursorError."""
    if len(cursor) > MAX_CURSOR_LENGTH or _BASE64URL.fullmatch(cursor) is None or len(cursor) % 4 == 1:
        raise CursorError("cursor is not a value returned as next_cursor")
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        created_at, event_id = msgspec.json.decode(raw, type=tuple[str, int])
    except (binascii.Error, ValueError, msgspec.DecodeError) as exc:
        raise CursorError("cursor is not a value returned as next_cursor") from exc

    if _TIMESTAMP.fullmatch(created_at) is None or not 1 <= event_id <= MAX_EVENT_ID:
        raise CursorError("cursor is not a value returned as next_cursor")
    return created_at, event_id
