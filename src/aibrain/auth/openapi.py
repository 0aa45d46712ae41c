"""The OpenAPI 3.1 description of the auth service, served at `GET /api/auth/openapi.json`.

A test compares its paths with the service's route table and fuzzes every operation against
these schemas, so a change to a route, body or error code must change this document too.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from aibrain import __version__
from aibrain.auth.cookies import COOKIE_PREFIX
from aibrain.auth.passwords import MAX_PASSWORD_LENGTH, MIN_PASSWORD_LENGTH
from aibrain.auth.validation import FORM_TYPE, JSON_TYPE
from aibrain.errors import JSONResponse
from aibrain.settings import Settings

BASE_PATH = "/api/auth"

_ERROR_CODES = [
    *("VALIDATION_ERROR", "BAD_REQUEST", "INVALID_REQUEST", "INVALID_EMAIL", "PASSWORD_TOO_SHORT"),
    *("PASSWORD_TOO_LONG", "INVALID_EMAIL_OR_PASSWORD", "UNAUTHORIZED", "MISSING_OR_NULL_ORIGIN"),
    *("INVALID_ORIGIN", "CROSS_SITE_NAVIGATION_LOGIN_BLOCKED", "INVALID_CALLBACK_URL"),
    *("METHOD_NOT_ALLOWED_DEFER_SESSION_REQUIRED", "BODY_TOO_LARGE", "UNSUPPORTED_MEDIA_TYPE"),
    *("USER_ALREADY_EXISTS_USE_ANOTHER_EMAIL", "TOO_MANY_REQUESTS", "DATABASE_UNAVAILABLE"),
]
# The server's email rule written without lookaheads, because schema-based generators lack them. The local part
# is dot-separated runs of [A-Za-z0-9_'+-] that do not end in a quote, then come labels and a 2+ letter TLD.
EMAIL_PATTERN = r"^(?:[A-Za-z0-9_'+-]+\.)*[A-Za-z0-9_'+-]*[A-Za-z0-9_+-]@(?:[A-Za-z0-9][A-Za-z0-9-]*\.)+[A-Za-z]{2,}$"

_DESCRIPTIONS = {
    400: "The body failed validation (VALIDATION_ERROR lists every field), is not valid JSON or "
    "UTF-8 (BAD_REQUEST), or breaks an email or password-length rule",
    401: "No valid session, or a wrong email or password",
    403: "An untrusted or missing Origin where one is required, or an untrusted callbackURL",
    405: "POST /get-session is disabled, as in Better Auth without deferSessionRefresh",
    413: "The body is larger than the maximum",
    415: "The body is neither application/json nor application/x-www-form-urlencoded",
    422: "The email already has an account",
    429: "Too many requests from this client address to this path; Retry-After gives the seconds to wait",
    503: "The auth database is locked, full or read-only",
}
_RETRY_AFTER = {"Retry-After": {"required": True, "schema": {"type": "string", "pattern": "^[0-9]+$"}}}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any], description: str, headers: dict[str, Any] | None = None) -> dict[str, Any]:
    response: dict[str, Any] = {"description": description, "content": {JSON_TYPE: {"schema": schema}}}
    if headers:
        response["headers"] = headers
    return response


def _errors(*statuses: int) -> dict[str, Any]:
    """Build the given error responses plus 429 (when rate limiting is on) and 503, which every route can return."""
    responses = {}
    for status in (*statuses, 429, 503):
        headers = _RETRY_AFTER if status == 429 else None
        responses[str(status)] = _json(_ref("Error"), _DESCRIPTIONS[status], headers)
    return responses


def _header(description: str, *, required: bool = True) -> dict[str, Any]:
    return {"description": description, "required": required, "schema": {"type": "string", "minLength": 1}}


_SESSION_HEADERS = {
    "set-auth-token": _header("The signed session token, to send back as Authorization: Bearer"),
    "set-auth-jwt": _header("A fresh JWT for the events API, the same as the body's `jwt`"),
}


def _credentials(*, sign_up: bool, form: bool) -> dict[str, Any]:
    """Return the sign-up or sign-in body schema, as JSON or as form fields (all strings)."""
    minimum = MIN_PASSWORD_LENGTH if sign_up else 1
    password = {
        "type": "string",
        "minLength": minimum,
        "maxLength": MAX_PASSWORD_LENGTH,
        "description": f"{minimum} to {MAX_PASSWORD_LENGTH} UTF-16 code units; others get a 400 "
        + ("PASSWORD_TOO_SHORT or PASSWORD_TOO_LONG." if sign_up else "PASSWORD_TOO_LONG or a 401."),
    }
    properties: dict[str, Any] = {
        "email": {"type": "string", "pattern": EMAIL_PATTERN, "description": "Compared after lower-casing."},
        "password": password,
        "callbackURL": {
            "type": "string",
            "description": "A relative path or a URL on a trusted origin; others get 403 INVALID_CALLBACK_URL.",
        },
        "rememberMe": {
            "description": "false makes a browser-session cookie and a one-day session (default true).",
            **({"type": "string", "enum": ["true", "false"]} if form else {"type": "boolean"}),
        },
    }
    if sign_up:
        properties = {"name": {"type": "string"}, **properties, "image": {"type": "string"}}
    required = ["name", "email", "password"] if sign_up else ["email", "password"]
    return {"type": "object", "required": required, "properties": properties, "description": "Other keys are ignored."}


def _request_body(*, sign_up: bool) -> dict[str, Any]:
    json_schema = _credentials(sign_up=sign_up, form=False)
    form_schema = _credentials(sign_up=sign_up, form=True)
    return {"required": True, "content": {JSON_TYPE: {"schema": json_schema}, FORM_TYPE: {"schema": form_schema}}}


def _closed(properties: dict[str, Any], *, optional: tuple[str, ...] = ()) -> dict[str, Any]:
    """Return an object schema that requires every property except `optional` and allows no others."""
    required = [name for name in properties if name not in optional]
    return {"type": "object", "required": required, "additionalProperties": False, "properties": properties}


def _schemas() -> dict[str, Any]:
    timestamp = {"type": "string", "pattern": "^\\d{4}-\\d{2}-\\d{2}T\\d{2}:\\d{2}:\\d{2}\\.\\d{3}Z$"}
    text = {"type": "string"}
    identifier = {"type": "string", "minLength": 1}
    user_and_session = {"user": _ref("User"), "session": _ref("Session")}
    return {
        "Error": {
            "type": "object",
            "required": ["message", "code"],
            "properties": {"message": text, "code": {"type": "string", "enum": _ERROR_CODES}},
        },
        "User": _closed(
            {
                "name": text,
                "email": text,
                "emailVerified": {"type": "boolean"},
                "image": {"type": ["string", "null"]},
                "createdAt": timestamp,
                "updatedAt": timestamp,
                "id": identifier,
            }
        ),
        "Session": _closed(
            {
                "expiresAt": timestamp,
                "token": {**identifier, "description": "The raw session token."},
                "createdAt": timestamp,
                "updatedAt": timestamp,
                "ipAddress": {"type": ["string", "null"]},
                "userAgent": {"type": ["string", "null"]},
                "userId": identifier,
                "id": identifier,
            }
        ),
        "SignUp": _closed({"token": text, **user_and_session, "jwt": text}),
        "SignIn": _closed(
            {
                "redirect": {"type": "boolean", "description": "true when the request had a callbackURL."},
                "token": text,
                "url": {"type": "string", "description": "The callbackURL, present only when one was sent."},
                **user_and_session,
                "jwt": text,
            },
            optional=("url",),
        ),
        "CurrentSession": {**_closed(user_and_session), "type": ["object", "null"], "description": "null without a session."},
        "Jwks": _closed(
            {
                "keys": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["alg", "kty", "kid"],
                        "properties": {"alg": text, "kty": {"enum": ["OKP", "EC", "RSA"]}, "kid": text},
                    },
                }
            }
        ),
    }


_DISABLE_REFRESH = {
    "name": "disableRefresh",
    "in": "query",
    "description": "true skips extending the session.",
    "schema": {"type": "string"},
}


def _paths() -> dict[str, Any]:
    session = [{"bearer": []}, {"cookie": []}]
    no_store = {"cache-control": {"required": True, "schema": {"const": "no-store"}}}
    return {
        "/sign-up/email": {
            "post": {
                "summary": "Create a user with email and password, and sign it in",
                "requestBody": _request_body(sign_up=True),
                "responses": {
                    "200": _json(_ref("SignUp"), "Signed up; sets the session cookie", _SESSION_HEADERS),
                    **_errors(400, 403, 413, 415, 422),
                },
            }
        },
        "/sign-in/email": {
            "post": {
                "summary": "Start a session with email and password",
                "requestBody": _request_body(sign_up=False),
                "responses": {
                    "200": _json(_ref("SignIn"), "Signed in; sets the session cookie", _SESSION_HEADERS),
                    **_errors(400, 401, 403, 413, 415),
                },
            }
        },
        "/sign-out": {
            "post": {
                "summary": "End the current session, if any, and clear the cookies",
                "description": "The body is optional and ignored. A request with a Cookie header needs a trusted Origin.",
                "security": [*session, {}],
                "responses": {
                    "200": _json({"const": {"success": True}}, "Signed out, even without a session"),
                    **_errors(400, 403, 413),
                },
            }
        },
        "/get-session": {
            "get": {
                "summary": "The current session and its user, or null",
                "security": [*session, {}],
                "parameters": [_DISABLE_REFRESH],
                "responses": {"200": _json(_ref("CurrentSession"), "The session, or null", no_store), **_errors()},
            },
            "post": {
                "summary": "Always rejected, as in Better Auth 1.7 without deferSessionRefresh",
                "responses": {"405": _json(_ref("Error"), _DESCRIPTIONS[405], no_store), **_errors()},
            },
        },
        "/token": {
            "get": {
                "summary": "A fresh JWT for the current session",
                "security": session,
                "responses": {
                    "200": _json({"type": "object", "required": ["token"], "properties": {"token": {"type": "string"}}}, "A JWT"),
                    **_errors(401),
                },
            }
        },
        "/jwks": {
            "get": {
                "summary": "Public keys that verify the JWTs",
                "responses": {"200": _json(_ref("Jwks"), "JWK Set"), **_errors()},
            }
        },
        "/ok": {
            "get": {
                "summary": "Liveness",
                "responses": {"200": _json({"const": {"ok": True}}, "Alive"), **_errors()},
            }
        },
        "/openapi.json": {
            "get": {"summary": "This document", "responses": {"200": {"description": "OpenAPI 3.1"}, **_errors()}}
        },
    }


def openapi_document(settings: Settings) -> dict[str, Any]:
    """Build the OpenAPI document, with the base URL and cookie name taken from the settings."""
    secure = settings.base_url.startswith("https://")
    cookie_name = f"{'__Secure-' if secure else ''}{COOKIE_PREFIX}.session_token"
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "aibrain auth service",
            "version": __version__,
            "description": (
                "Email and password sign-in, sessions and JWTs, answering as Better Auth 1.7 does. "
                'Errors are {"message", "code"} JSON. Request bodies are JSON or form-encoded, at '
                f"most {settings.max_body_bytes * 2} bytes on sign-up and sign-in and "
                f"{settings.max_body_bytes} on sign-out."
            ),
        },
        "servers": [{"url": settings.base_url.rstrip("/") + BASE_PATH}],
        "paths": _paths(),
        "components": {
            "schemas": _schemas(),
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "description": "The session token, signed or raw."},
                "cookie": {"type": "apiKey", "in": "cookie", "name": cookie_name},
            },
        },
    }


def openapi_handler(settings: Settings) -> Callable[[Request], Awaitable[Response]]:
    """Return the route handler that serves the document, built once."""
    response_body = openapi_document(settings)

    async def serve(request: Request) -> Response:
        return JSONResponse(response_body)

    return serve
