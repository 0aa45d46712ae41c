"""Read and validate auth request bodies the way Better Auth 1.7 (zod v4) does, messages included."""

from __future__ import annotations

import re
from typing import Final
from urllib.parse import parse_qsl

import msgspec

from aibrain.errors import ServiceError
from aibrain.http_input import json_depth


class _Undefined:
    def __repr__(self) -> str:
        return "undefined"


UNDEFINED: Final = _Undefined()

# zod v4's "practical" email pattern, ASCII only: dot-separated local runs of [A-Za-z0-9_'+-] with no
# leading, trailing or double dot and no `'` right before the `@`, then labels and a 2+ letter TLD.
EMAIL_PATTERN = re.compile(
    r"(?!\.)(?!.*\.\.)[A-Za-z0-9_'+\-.]*[A-Za-z0-9_+-]@(?:[A-Za-z0-9][A-Za-z0-9\-]*\.)+[A-Za-z]{2,}",
    re.ASCII,
)

FORM_TYPE = "application/x-www-form-urlencoded"
JSON_TYPE = "application/json"
_BOOLEAN_FIELDS = frozenset({"rememberMe"})
_json_decoder = msgspec.json.Decoder()


def is_email(value: str) -> bool:
    return EMAIL_PATTERN.fullmatch(value) is not None


def js_type(value: object) -> str:
    """Name a decoded JSON value's type as JavaScript's zod messages do."""
    if value is UNDEFINED:
        return "undefined"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def parse_body(content_type: str | None, raw: bytes, *, max_depth: int = 64) -> object:
    """Decode a JSON or form body; an empty body is `UNDEFINED`, as in Better Auth.

    JSON nested deeper than `max_depth` is rejected before decoding, because the decoder would
    otherwise recurse until Python's stack limit.
    """
    if not raw.strip():
        return UNDEFINED
    media_type = (content_type or "").split(";", 1)[0].strip().lower()
    if media_type == JSON_TYPE or media_type.endswith("+json"):
        if raw.count(b"[") + raw.count(b"{") > max_depth and json_depth(raw) > max_depth:
            raise ServiceError(400, "BAD_REQUEST", f"The JSON body nests deeper than {max_depth} levels.")
        try:
            return _json_decoder.decode(raw)
        except msgspec.DecodeError:
            raise ServiceError(400, "BAD_REQUEST", "Invalid JSON in request body") from None
    if media_type == FORM_TYPE:
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise ServiceError(400, "BAD_REQUEST", "The form body is not valid UTF-8.") from None
        return {name: _form_value(name, value) for name, value in parse_qsl(text, keep_blank_values=True)}
    shown = content_type or "none"
    raise ServiceError(
        415,
        "UNSUPPORTED_MEDIA_TYPE",
        f'Content-Type "{shown}" is not allowed. Allowed types: {FORM_TYPE}, {JSON_TYPE}',
    )


def _form_value(name: str, value: str) -> object:
    if name in _BOOLEAN_FIELDS and value in ("true", "false"):
        return value == "true"
    return value


Field = tuple[str, str, bool]  # (name, expected JavaScript type, required)

SIGN_UP_FIELDS: list[Field] = [
    ("name", "string", True),
    ("email", "string", True),
    ("password", "string", True),
    ("image", "string", False),
    ("callbackURL", "string", False),
    ("rememberMe", "boolean", False),
]
SIGN_IN_FIELDS: list[Field] = [
    ("email", "string", True),
    ("password", "string", True),
    ("callbackURL", "string", False),
    ("rememberMe", "boolean", False),
]


def validate(body: object, fields: list[Field], *, record_check: bool = False, email_format: bool = False) -> dict:
    """Check field types like Better Auth's zod schema and raise one 400 listing every failure."""
    if not isinstance(body, dict):
        problems = [f"[body] Invalid input: expected object, received {js_type(body)}"]
        if record_check:
            problems.append(f"[body] Invalid input: expected record, received {js_type(body)}")
        raise ServiceError(400, "VALIDATION_ERROR", "; ".join(problems))

    problems = []
    for name, expected, required in fields:
        value = body.get(name, UNDEFINED)
        if value is UNDEFINED and not required:
            continue
        received = js_type(value)
        if received != expected:
            problems.append(f"[body.{name}] Invalid input: expected {expected}, received {received}")
        elif name == "email" and email_format and not is_email(value):
            problems.append("[body.email] Invalid email address")
        elif name == "password" and value == "":
            problems.append("[body.password] Too small: expected string to have >=1 characters")
    if problems:
        raise ServiceError(400, "VALIDATION_ERROR", "; ".join(problems))
    return body
