"""Schema-driven fuzzing of the auth service with schemathesis, against a real process.

Every operation of `/api/auth/openapi.json` gets up to 30 generated requests that fit the
document, sent once without an Origin header and once with the service's own origin. The
operations with a body also get up to 30 requests that do not fit. Each response must not be a 5xx and
must match the document: a declared status code, the declared content type, a body valid
against the declared schema and the declared headers. No cookies are sent.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any
from unittest.mock import Mock

import re

import httpx
import pytest
import schemathesis
from hypothesis import given
from schemathesis.checks import not_a_server_error
from schemathesis.generation.modes import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from aibrain.auth.app import BASE_PATH, _route_table
from aibrain.auth.openapi import EMAIL_PATTERN
from aibrain.auth.validation import is_email
from aibrain.settings import Settings
from tests.hostile.support import fuzz_settings
from tests.servers import Service, start_auth

MAX_EXAMPLES = 30
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
]


@pytest.fixture(scope="module")
def auth(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    service = start_auth(tmp_path_factory.mktemp("auth"))
    yield service
    service.stop()


@pytest.fixture(scope="module")
def schema(auth: Service) -> Any:
    return schemathesis.openapi.from_url(auth.url + BASE_PATH + "/openapi.json")


LABELS = [
    "POST /sign-up/email",
    "POST /sign-in/email",
    "POST /sign-out",
    "GET /get-session",
    "POST /get-session",
    "GET /token",
    "GET /jwks",
    "GET /ok",
    "GET /openapi.json",
]
# Statuses of which each operation must return at least one to positive requests without a session.
# A sign-up may meet an email that an earlier case of this module registered, so its 422 also shows
# that the request passed validation and the origin check.
EXPECTED: dict[str, set[int]] = {
    "POST /sign-up/email": {200, 422},
    "POST /sign-in/email": {401},
    "POST /sign-out": {200},
    "GET /get-session": {200},
    "POST /get-session": {405},
    "GET /token": {401},
    "GET /jwks": {200},
    "GET /ok": {200},
    "GET /openapi.json": {200},
}


def test_auth_openapi_paths_match_routes(schema: Any) -> None:
    # The table only needs the handlers' names, so stand-ins replace the real handlers.
    routes = set(_route_table(Mock(settings=Settings())))
    documented = {(method.upper(), path) for path, item in schema.raw_schema["paths"].items() for method in item}

    assert documented == routes


def test_auth_openapi_lists_every_operation(schema: Any) -> None:
    """schemathesis 4.32.5 leaves GET /openapi.json out of its own list, so it is looked up by label."""
    labels = {result.ok().label for result in schema.get_all_operations()}

    assert labels >= set(LABELS) - {"GET /openapi.json"}
    assert schema.find_operation_by_label("GET /openapi.json") is not None


ORIGINS = ["no-origin", "own-origin"]
BODY_LABELS = ["POST /sign-up/email", "POST /sign-in/email"]
CASES = [(label, GenerationMode.POSITIVE, origin) for label in LABELS for origin in ORIGINS] + [
    (label, GenerationMode.NEGATIVE, origin) for label in BODY_LABELS for origin in ORIGINS
]


@pytest.mark.parametrize(
    ("label", "mode", "origin"),
    CASES,
    ids=[f"{label}-{mode.value}-{origin}" for label, mode, origin in CASES],
)
def test_auth_operation_conforms(auth: Service, schema: Any, label: str, mode: GenerationMode, origin: str) -> None:
    operation = schema.find_operation_by_label(label)
    headers = {"Origin": auth.url} if origin == "own-origin" else {}
    statuses: list[int] = []

    @fuzz_settings(MAX_EXAMPLES)
    @given(case=operation.as_strategy(generation_mode=mode))
    def check(case: Any) -> None:
        # Generated security values may add a Cookie header, which this suite never sends.
        if case.cookies:
            case.cookies = {}
        response = case.call_and_validate(
            base_url=auth.url + BASE_PATH, headers=headers, checks=CHECKS, timeout=30
        )
        statuses.append(response.status_code)

    check()

    assert statuses
    if mode is GenerationMode.POSITIVE:
        assert EXPECTED[label] & set(statuses)


def test_auth_openapi_429_conforms(tmp_path: Path, schema: Any) -> None:
    """The 429 of a rate-limited sign-in carries the documented body and Retry-After header."""
    limited = start_auth(tmp_path, AIBRAIN_RATE_LIMIT_ENABLED="true", AIBRAIN_RATE_LIMIT_AUTH_MAX="1")
    try:
        body = {"email": "nobody@example.com", "password": "wrong-password"}
        responses = [httpx.post(limited.url + BASE_PATH + "/sign-in/email", json=body) for _ in range(2)]
    finally:
        limited.stop()

    assert [response.status_code for response in responses] == [401, 429]
    assert responses[1].json()["code"] == "TOO_MANY_REQUESTS"
    # validate_response checks the status and body but not the documented headers.
    assert responses[1].headers.get("retry-after", "").isdigit()
    schema.find_operation_by_label("POST /sign-in/email").validate_response(responses[1])


EMAILS = [
    "a@b.co",
    "A+Tag@Sub.Example.COM",
    "o'neil@example.com",
    "a.b-c_d@x-y.example.org",
    "user@localhost",
    "\u00fcser@example.com",
    "a..b@example.com",
    ".a@example.com",
    "a.@example.com",
    "a'@example.com",
    "a@example.c",
    "a@-example.com",
    "a@example.com.",
    " spaced@example.com",
    "a@b.c0m",
]


@pytest.mark.parametrize("email", EMAILS)
def test_auth_openapi_email_pattern_matches_server(email: str) -> None:
    """The document's lookahead-free email pattern must accept exactly what the server accepts."""
    assert (re.fullmatch(EMAIL_PATTERN, email) is not None) == is_email(email)


def test_auth_fuzz_left_no_traceback(auth: Service) -> None:
    log = auth.log_text()

    assert "Traceback" not in log
    assert " ERROR " not in log
