"""The OpenAPI 3.1 description of the events API, served at `GET /openapi.json`.

A test compares its paths with the app's routes and validates real responses against these
schemas, so a change to a route must change this document too.
"""

from __future__ import annotations

from typing import Any

from aibrain import __version__
from aibrain.api.bodies import TYPE_PATTERN, TYPE_RULE
from aibrain.settings import Settings

_ERROR_CODES = [
    "MISSING_TOKEN",
    "INVALID_TOKEN",
    "TOKEN_EXPIRED",
    "TOKEN_NOT_YET_VALID",
    "UNKNOWN_KEY",
    "AUTH_UNAVAILABLE",
    "INVALID_JSON",
    "INVALID_QUERY",
    "INVALID_CURSOR",
    "INVALID_REQUEST",
    "VALIDATION_ERROR",
    "BODY_TOO_LARGE",
    "UNSUPPORTED_MEDIA_TYPE",
    "QUOTA_EXCEEDED",
    "STORAGE_FULL",
    "STORAGE_UNAVAILABLE",
    "NOT_FOUND",
    "METHOD_NOT_ALLOWED",
    "INTERNAL_ERROR",
]

_DESCRIPTIONS = {
    400: "Invalid JSON, query or cursor",
    401: "Missing or rejected bearer token; the response carries WWW-Authenticate: Bearer",
    413: "Body larger than the maximum",
    415: "Body is not application/json",
    422: "A field has the wrong type or value; the message names it",
    429: "The user's write budget is spent (QUOTA_EXCEEDED), with Retry-After and the remaining budgets",
    503: "No signing keys known yet (AUTH_UNAVAILABLE, with Retry-After) or the event store is unavailable",
    507: "The disk of the event store is full",
}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _errors(*statuses: int) -> dict[str, Any]:
    return {str(status): _json(_ref("Error"), _DESCRIPTIONS[status]) for status in statuses}


def _schemas(settings: Settings) -> dict[str, Any]:
    event_type = {
        "type": "string",
        "minLength": 1,
        "maxLength": settings.max_type_length,
        "pattern": TYPE_PATTERN,
        "description": f"Event type, compared exactly and case-sensitively: {TYPE_RULE}.",
    }
    timestamp = {"type": "string", "pattern": "^\\d{4}-\\d{2}-\\d{2}T\\d{2}:\\d{2}:\\d{2}\\.\\d{3}Z$"}
    return {
        "Error": {
            "type": "object",
            "required": ["message", "code"],
            "properties": {"message": {"type": "string"}, "code": {"type": "string", "enum": _ERROR_CODES}},
        },
        "EventInput": {
            "type": "object",
            "required": ["type", "data"],
            "additionalProperties": False,
            "properties": {
                "type": event_type,
                "data": {"description": "Any JSON value; NaN, Infinity and lone surrogates are rejected."},
            },
        },
        "Event": {
            "type": "object",
            "required": ["id", "type", "data", "created_at"],
            "additionalProperties": False,
            "properties": {
                "id": {"type": "integer", "minimum": 1},
                "type": event_type,
                "data": {"description": "The stored JSON value."},
                "created_at": {**timestamp, "description": "RFC 3339 UTC time with milliseconds."},
            },
        },
        "EventPage": {
            "type": "object",
            "required": ["events", "next_cursor"],
            "additionalProperties": False,
            "properties": {
                "events": {"type": "array", "items": _ref("Event")},
                "next_cursor": {
                    "type": ["string", "null"],
                    "description": "Pass as cursor to get the next, older page; null on the last page.",
                },
            },
        },
        "Me": {
            "type": "object",
            "required": ["id", "email", "name", "email_verified", "image"],
            "additionalProperties": False,
            "properties": {
                "id": {"type": "string", "minLength": 1},
                "email": {"type": ["string", "null"]},
                "name": {"type": ["string", "null"]},
                "email_verified": {"type": "boolean"},
                "image": {"type": ["string", "null"]},
            },
        },
        "Health": {
            "type": "object",
            "required": ["status", "jwks", "stores"],
            "additionalProperties": False,
            "properties": {
                "status": {"type": "string", "enum": ["ok", "degraded"]},
                "jwks": _ref("JwksStats"),
                "stores": {
                    "type": "object",
                    "required": ["open", "max"],
                    "additionalProperties": False,
                    "properties": {"open": {"type": "integer", "minimum": 0}, "max": {"type": "integer", "minimum": 1}},
                },
            },
        },
        "JwksStats": {
            "type": "object",
            "required": ["keys", "kids", "age_seconds", "hits", "misses", "refreshes", "failures"],
            "additionalProperties": False,
            "properties": {
                "keys": {"type": "integer", "minimum": 0},
                "kids": {"type": "array", "items": {"type": "string"}},
                "age_seconds": {"type": ["number", "null"], "minimum": 0},
                "hits": {"type": "integer", "minimum": 0},
                "misses": {"type": "integer", "minimum": 0},
                "refreshes": {"type": "integer", "minimum": 0},
                "failures": {"type": "integer", "minimum": 0},
            },
        },
        "Ready": {
            "type": "object",
            "required": ["status"],
            "additionalProperties": False,
            "properties": {"status": {"type": "string", "enum": ["ready"]}},
        },
    }


def _list_parameters(settings: Settings) -> list[dict[str, Any]]:
    return [
        {
            "name": "type",
            "in": "query",
            "required": False,
            "description": "Only events of exactly this type; give it at most once, never empty.",
            "schema": {"type": "string", "minLength": 1, "maxLength": settings.max_type_length},
        },
        {
            "name": "limit",
            "in": "query",
            "required": False,
            "schema": {
                "type": "integer",
                "minimum": 1,
                "maximum": settings.max_page_size,
                "default": min(settings.default_page_size, settings.max_page_size),
            },
        },
        {
            "name": "cursor",
            "in": "query",
            "required": False,
            "description": "The next_cursor of the previous page, unchanged.",
            "schema": {"type": "string"},
        },
    ]


def _paths(settings: Settings) -> dict[str, Any]:
    secured = [{"bearer": []}]
    return {
        "/health": {"get": {"summary": "Liveness and cache statistics", "responses": {"200": _json(_ref("Health"), "OK")}}},
        "/ready": {
            "get": {
                "summary": "Readiness: signing keys are known",
                "responses": {"200": _json(_ref("Ready"), "Ready"), "503": _json(_ref("Error"), "No signing keys yet")},
            }
        },
        "/openapi.json": {"get": {"summary": "This document", "responses": {"200": {"description": "OpenAPI 3.1"}}}},
        "/me": {
            "get": {
                "summary": "The user named by the token",
                "security": secured,
                "responses": {"200": _json(_ref("Me"), "The token's user"), **_errors(401, 503)},
            }
        },
        "/events": {
            "post": {
                "summary": "Store one event",
                "security": secured,
                "requestBody": {"required": True, "content": {"application/json": {"schema": _ref("EventInput")}}},
                "responses": {"201": _json(_ref("Event"), "Stored"), **_errors(400, 401, 413, 415, 422, 429, 503, 507)},
            },
            "get": {
                "summary": "List events, newest first",
                "security": secured,
                "parameters": _list_parameters(settings),
                "responses": {"200": _json(_ref("EventPage"), "One page"), **_errors(400, 401, 503)},
            },
        },
    }


def openapi_document(settings: Settings) -> dict[str, Any]:
    """Build the OpenAPI document with the limits taken from the settings."""
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "aibrain events API",
            "version": __version__,
            "description": (
                "Per-user event memory. Every route except /health, /ready and /openapi.json needs "
                "Authorization: Bearer <JWT> issued by the aibrain auth service. Errors are "
                '{"message", "code"} JSON. Request bodies are strict JSON, at most '
                f"{settings.max_body_bytes} bytes and {settings.max_json_depth} levels deep; when a key "
                "repeats, its last value wins."
            ),
        },
        "paths": _paths(settings),
        "components": {
            "schemas": _schemas(settings),
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}},
        },
    }
