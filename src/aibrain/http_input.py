"""Request-body helpers both services use: a size-capped body reader and a JSON depth scan."""

from __future__ import annotations

import re
from array import array
from itertools import accumulate
from typing import Final

from starlette.requests import ClientDisconnect, Request

from aibrain.errors import ServiceError

# Strings are removed before brackets are counted, because brackets inside them do not nest.
_JSON_STRING: Final = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_NOT_BRACKETS: Final = bytes(byte for byte in range(256) if byte not in b"[]{}")
# Opening brackets become +1 and closing ones -1 when the bytes are read as signed chars.
_BRACKET_STEPS: Final = bytes.maketrans(b"[{]}", b"\x01\x01\xff\xff")


def json_depth(body: bytes) -> int:
    """Return the deepest nesting of arrays and objects in a JSON text, without recursion.

    For malformed JSON the result may be wrong, which does not matter: the decoder rejects it.
    """
    brackets = _JSON_STRING.sub(b'""', body).translate(None, _NOT_BRACKETS)
    if not brackets:
        return 0
    steps = array("b", brackets.translate(_BRACKET_STEPS))
    return max(accumulate(steps))


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
