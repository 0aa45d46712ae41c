"""Read and validate request bodies: size, media type, JSON depth, strict JSON and field types.

JSON rules for `POST /events`:
- the body is UTF-8 JSON as RFC 8259 defines it: NaN, Infinity and lone surrogate escapes are
  rejected with 400 INVALID_JSON;
- arrays and objects nest at most `max_json_depth` levels, counting the outer object. The depth is
  counted by scanning the bytes before decoding, so the limit holds on every Python version;
- when an object repeats a key, the last value wins (as in JavaScript's JSON.parse), and only that
  value is stored;
- `data` is required and may be any JSON value, null and bare strings included.
"""

from __future__ import annotations

import re
from array import array
from itertools import accumulate
from typing import Any, Final

import msgspec
from starlette.requests import ClientDisconnect, Request

from aibrain.errors import ServiceError

# Strings are removed before brackets are counted, because brackets inside them do not nest.
_JSON_STRING: Final = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_NOT_BRACKETS: Final = bytes(byte for byte in range(256) if byte not in b"[]{}")
# Opening brackets become +1 and closing ones -1 when the bytes are read as signed chars.
_BRACKET_STEPS: Final = bytes.maketrans(b"[{]}", b"\x01\x01\xff\xff")

TYPE_RULE: Final = (
    "printable Unicode characters: letters, digits, punctuation, symbols and spaces, "
    "but no control, format, surrogate, private-use or unassigned characters and no line breaks"
)


class EventIn(msgspec.Struct, forbid_unknown_fields=True):
    """The body of `POST /events`."""

    type: str
    data: Any


def json_depth(body: bytes) -> int:
    """Return the deepest nesting of arrays and objects in a JSON text, without recursion.

    For malformed JSON the result may be wrong, which does not matter: the decoder rejects it.
    """
    brackets = _JSON_STRING.sub(b'""', body).translate(None, _NOT_BRACKETS)
    if not brackets:
        return 0
    steps = array("b", brackets.translate(_BRACKET_STEPS))
    return max(accumulate(steps))


def check_json_media_type(request: Request) -> None:
    """Reject a body that is not declared as `application/json` (UTF-8 when a charset is given)."""
    value = request.headers.get("content-type", "")
    media_type, _, parameters = value.partition(";")
    if media_type.strip().lower() != "application/json":
        raise ServiceError(415, "UNSUPPORTED_MEDIA_TYPE", "send the body as Content-Type: application/json")

    for parameter in parameters.split(";"):
        name, _, charset = parameter.partition("=")
        if name.strip().lower() == "charset" and charset.strip().strip('"').lower() not in ("utf-8", "utf8"):
            raise ServiceError(415, "UNSUPPORTED_MEDIA_TYPE", "the JSON body must be UTF-8")


def _too_large(limit: int) -> ServiceError:
    return ServiceError(413, "BODY_TOO_LARGE", f"request body is larger than {limit} bytes")


async def read_body(request: Request, limit: int) -> bytes:
    """Read the body, rejecting it with 413 as soon as it is known to exceed `limit` bytes.

    A Content-Length above the limit is rejected before any byte is read; a chunked body is
    counted while it streams in.
    """
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.isdigit():
            raise ServiceError(400, "INVALID_REQUEST", "Content-Length is not a number")
        if int(declared) > limit:
            raise _too_large(limit)

    chunks = bytearray()
    try:
        async for chunk in request.stream():
            chunks += chunk
            if len(chunks) > limit:
                raise _too_large(limit)
    except ClientDisconnect:
        raise ServiceError(400, "INVALID_REQUEST", "the client disconnected before sending the whole body") from None
    return bytes(chunks)


def check_event_type(value: str, max_length: int) -> None:
    """Reject an event type that is empty, too long, or contains a character outside TYPE_RULE."""
    if not 1 <= len(value) <= max_length:
        raise ServiceError(
            422, "VALIDATION_ERROR", f"type must be 1 to {max_length} characters long, got {len(value)}"
        )
    if not value.isprintable():
        raise ServiceError(422, "VALIDATION_ERROR", f"type must contain only {TYPE_RULE}")


def decode_event(body: bytes, *, max_depth: int, max_type_length: int) -> EventIn:
    """Decode and validate a `POST /events` body."""
    # Fewer opening brackets than the limit cannot nest deeper than it, so most bodies skip the scan.
    openings = body.count(b"[") + body.count(b"{")
    depth = json_depth(body) if openings > max_depth else 0
    if depth > max_depth:
        raise ServiceError(400, "INVALID_JSON", f"JSON nests {depth} levels deep; the maximum is {max_depth}")

    try:
        event = msgspec.json.decode(body, type=EventIn)
    except msgspec.ValidationError as exc:
        raise ServiceError(422, "VALIDATION_ERROR", str(exc)) from exc
    except msgspec.DecodeError as exc:
        raise ServiceError(400, "INVALID_JSON", f"body is not valid JSON: {exc}") from exc

    check_event_type(event.type, max_type_length)
    return event
