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

from typing import Any, Final

import msgspec
from starlette.requests import Request

from aibrain.errors import ServiceError
from aibrain.http_input import json_depth, read_body

TYPE_RULE: Final = (
    "printable Unicode characters: letters, digits, punctuation, symbols and spaces, "
    "but no control, format, surrogate, private-use or unassigned characters and no line breaks"
)


def _non_printable_bmp_ranges() -> str:
    """Return a regex character-class body of every BMP character that str.isprintable() rejects."""
    ranges: list[str] = []
    start: int | None = None
    for code in range(0x10000 + 1):
        rejected = code <= 0xFFFF and not chr(code).isprintable()
        if rejected and start is None:
            start = code
        elif not rejected and start is not None:
            end = code - 1
            ranges.append(f"\\u{start:04x}" if start == end else f"\\u{start:04x}-\\u{end:04x}")
            start = None
    return "".join(ranges)


# The OpenAPI pattern of `type`, built from the same rule check_event_type applies, so the document
# and the server agree on every BMP character of this Python's Unicode version.
# NOTE: JSON Schema patterns without the `u` flag see characters beyond the BMP as surrogate pairs,
# so the pattern cannot express the rule for them. The server still rejects the unprintable ones.
TYPE_PATTERN: Final = f"^[^{_non_printable_bmp_ranges()}]+$"


class EventIn(msgspec.Struct, forbid_unknown_fields=True):
    """The body of `POST /events`."""

    type: str
    data: Any


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
