"""Keep GET /openapi.json true: its paths match the app's routes and real responses match its schemas.

jsonschema is not a dependency, so `validate` below implements the JSON Schema keywords the
document uses: $ref, type (a name or a list), enum, required, properties, additionalProperties
(false only), items, minLength, maxLength, pattern, minimum and maximum.
"""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest
from starlette.routing import Route

from tests.api.support import FakeClock, RunningApi, bearer, claims_for
from tests.fixtures.issuer import StubIssuer

_TYPES: dict[str, tuple[type, ...]] = {
    "object": (dict,),
    "array": (list,),
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "null": (type(None),),
}


def _is_type(value: Any, name: str) -> bool:
    if isinstance(value, bool) and name in ("integer", "number"):
        return False
    return isinstance(value, _TYPES[name])


def validate(value: Any, schema: dict[str, Any], document: dict[str, Any], where: str = "$") -> list[str]:
    """Return the places where `value` breaks `schema`; an empty list means it is valid."""
    if "$ref" in schema:
        name = schema["$ref"].removeprefix("#/components/schemas/")
        return validate(value, document["components"]["schemas"][name], document, where)

    unknown = set(schema) - {
        "type", "enum", "required", "properties", "additionalProperties", "items",
        "minLength", "maxLength", "pattern", "minimum", "maximum", "description", "default",
    }  # fmt: skip
    if unknown:
        return [f"{where}: the validator does not know {sorted(unknown)}"]

    types = schema.get("type")
    if types is not None:
        names = types if isinstance(types, list) else [types]
        if not any(_is_type(value, name) for name in names):
            return [f"{where}: {value!r} is not of type {names}"]
    problems: list[str] = []
    if "enum" in schema and value not in schema["enum"]:
        problems.append(f"{where}: {value!r} is not one of {schema['enum']}")
    if isinstance(value, dict):
        problems += _validate_object(value, schema, document, where)
    if isinstance(value, list) and "items" in schema:
        for index, item in enumerate(value):
            problems += validate(item, schema["items"], document, f"{where}[{index}]")
    if isinstance(value, str):
        problems += _validate_string(value, schema, where)
    if _is_type(value, "number"):
        if "minimum" in schema and value < schema["minimum"]:
            problems.append(f"{where}: {value} is below {schema['minimum']}")
        if "maximum" in schema and value > schema["maximum"]:
            problems.append(f"{where}: {value} is above {schema['maximum']}")
    return problems


def _validate_object(value: dict[str, Any], schema: dict[str, Any], document: dict[str, Any], where: str) -> list[str]:
    problems = [f"{where}: missing {name}" for name in schema.get("required", []) if name not in value]
    properties = schema.get("properties", {})
    for name, item in value.items():
        if name in properties:
            problems += validate(item, properties[name], document, f"{where}.{name}")
        elif schema.get("additionalProperties") is False:
            problems.append(f"{where}: unexpected member {name}")
    return problems


def _validate_string(value: str, schema: dict[str, Any], where: str) -> list[str]:
    problems = []
    if len(value) < schema.get("minLength", 0):
        problems.append(f"{where}: shorter than {schema['minLength']}")
    if len(value) > schema.get("maxLength", len(value)):
        problems.append(f"{where}: longer than {schema['maxLength']}")
    if "pattern" in schema and re.search(schema["pattern"], value) is None:
        problems.append(f"{where}: does not match {schema['pattern']}")
    return problems


@pytest.fixture
def document(http: httpx.Client) -> dict[str, Any]:
    response = http.get("/openapi.json")
    assert response.status_code == 200
    return response.json()  # type: ignore[no-any-return]


def test_openapi_is_version_3_1(document: dict[str, Any]) -> None:
    assert document["openapi"] == "3.1.0"


def test_openapi_paths_match_routes(api: RunningApi, document: dict[str, Any]) -> None:
    routes = {
        (route.path, method.lower())
        for route in api.app.routes
        if isinstance(route, Route)
        for method in route.methods or ()
        if method != "HEAD"
    }
    documented = {(path, method) for path, operations in document["paths"].items() for method in operations}

    assert documented == routes


def test_openapi_validator_rejects_wrong_value(document: dict[str, Any]) -> None:
    problems = validate({"message": "m", "code": "NO_SUCH_CODE", "extra": 1}, {"$ref": "#/components/schemas/Error"}, document)

    assert len(problems) == 1


def _check(document: dict[str, Any], path: str, method: str, response: httpx.Response) -> list[str]:
    operation = document["paths"][path][method]
    described = operation["responses"].get(str(response.status_code))
    if described is None:
        return [f"{method.upper()} {path}: status {response.status_code} is not documented"]
    schema = described["content"]["application/json"]["schema"]
    return validate(response.json(), schema, document)


def test_openapi_schemas_match_responses(
    http: httpx.Client, document: dict[str, Any], issuer: StubIssuer, clock: FakeClock
) -> None:
    token = issuer.sign(claims_for(clock), "rsa-1")
    headers = bearer(token)
    http.post("/events", json={"type": "first", "data": None}, headers=headers)
    exchanges = [
        ("/health", "get", http.get("/health")),
        ("/ready", "get", http.get("/ready")),
        ("/me", "get", http.get("/me", headers=headers)),
        ("/me", "get", http.get("/me")),
        ("/events", "post", http.post("/events", json={"type": "t", "data": {"a": [1]}}, headers=headers)),
        ("/events", "post", http.post("/events", json={"type": 1, "data": 1}, headers=headers)),
        ("/events", "post", http.post("/events", content=b"{", headers={**headers, "Content-Type": "application/json"})),
        ("/events", "post", http.post("/events", content=b"{}", headers={**headers, "Content-Type": "text/plain"})),
        ("/events", "get", http.get("/events", params={"limit": 1}, headers=headers)),
        ("/events", "get", http.get("/events", params={"limit": 0}, headers=headers)),
        ("/events", "get", http.get("/events", params={"cursor": "x"}, headers=headers)),
    ]

    problems = [problem for path, method, response in exchanges for problem in _check(document, path, method, response)]

    assert problems == []
    assert exchanges[8][2].json()["next_cursor"] is not None
