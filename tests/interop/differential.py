"""One fixed script of requests, sent to any Better Auth-compatible server, reduced to comparable facts.

`observe(origin)` runs every case in `CASES` in order against a server with an empty database and
returns one `Observation` per case. Values that differ between any two correct servers (ids,
tokens, timestamps, key material) are reduced to their JSON types, so two observations of correct
servers are equal unless their wire behaviour differs.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlencode

import httpx

PASSWORD = "password123"


@dataclass(frozen=True)
class Case:
    """One request of the script; callables receive the state captured by earlier cases."""

    name: str
    method: str
    path: str
    json_body: object = None
    content: Callable[[dict], bytes] | bytes | None = None
    headers: Callable[[dict], dict[str, str]] | dict[str, str] = field(default_factory=dict)
    with_origin: bool = True
    capture: str | None = None


@dataclass
class Observation:
    """What a server returned for one case, with volatile values reduced to their types."""

    status: int
    code: str | None
    body_shape: Any
    cookies: dict[str, dict[str, Any]]
    header_presence: dict[str, bool]
    exposed_headers: frozenset[str]
    content_type: str | None
    cache_control: str | None
    message: str | None = None
    raw_body: Any = None


def shape(value: Any) -> Any:
    """Reduce a JSON value to its structure: dict keys with the shapes of their values, and type names."""
    if isinstance(value, dict):
        return {key: shape(item) for key, item in value.items()}
    if isinstance(value, list):
        return [shape(item) for item in value[:1]]
    if value is None:
        return "null"
    return type(value).__name__


def parse_set_cookie(header: str) -> tuple[str, dict[str, Any]]:
    """Split one Set-Cookie header into its name and its attributes (value reduced to empty/set)."""
    pair, *attributes = [part.strip() for part in header.split(";")]
    name, _, value = pair.partition("=")
    parsed: dict[str, Any] = {"value": "set" if value else "empty"}
    for attribute in attributes:
        key, has_value, attribute_value = attribute.partition("=")
        parsed[key.lower()] = attribute_value if has_value else True
    return name, parsed


def sign_token(token: str, secret: str) -> str:
    """Return Better Auth's signed session token: `<token>.<base64 HMAC-SHA256 with padding>`."""
    digest = hmac.new(secret.encode(), token.encode(), hashlib.sha256).digest()
    return f"{token}.{base64.b64encode(digest).decode()}"


def _cookie(state: dict) -> dict[str, str]:
    return {"cookie": f"better-auth.session_token={quote(state['signed'], safe='')}"}


def _bearer(key: str) -> Callable[[dict], dict[str, str]]:
    return lambda state: {"authorization": f"Bearer {state[key]}"}


def _bad_signature(state: dict) -> dict[str, str]:
    # A well-formed signature (44 base64 characters with padding) made with the wrong secret.
    forged = sign_token(state["raw"], "not the server secret, but just as long as one")
    return {"authorization": f"Bearer {forged}"}


def _form(fields: dict[str, str]) -> bytes:
    return urlencode(fields).encode()


FORM = {"content-type": "application/x-www-form-urlencoded"}
EMOJI = "\U0001f600"  # One code point, two UTF-16 code units.

CASES: list[Case] = [
    # Sign-up
    Case("sign-up ok", "POST", "/sign-up/email", {"name": "Dee", "email": "Dee@Example.com", "password": PASSWORD}),
    Case("sign-up duplicate email, other case", "POST", "/sign-up/email",
         {"name": "Dee", "email": "DEE@example.COM", "password": PASSWORD}),
    Case("sign-up password 7 chars", "POST", "/sign-up/email", {"name": "a", "email": "p7@example.com", "password": "1234567"}),
    Case("sign-up password 8 chars", "POST", "/sign-up/email", {"name": "a", "email": "p8@example.com", "password": "12345678"}),
    Case("sign-up password 128 chars", "POST", "/sign-up/email",
         {"name": "a", "email": "p128@example.com", "password": "a" * 128}),
    Case("sign-up password 129 chars", "POST", "/sign-up/email",
         {"name": "a", "email": "p129@example.com", "password": "a" * 129}),
    Case("sign-up 4 emoji (8 UTF-16 units)", "POST", "/sign-up/email",
         {"name": "a", "email": "e4@example.com", "password": EMOJI * 4}),
    Case("sign-up 64 emoji (128 UTF-16 units)", "POST", "/sign-up/email",
         {"name": "a", "email": "e64@example.com", "password": EMOJI * 64}),
    Case("sign-up 65 emoji (130 UTF-16 units)", "POST", "/sign-up/email",
         {"name": "a", "email": "e65@example.com", "password": EMOJI * 65}),
    Case("sign-up empty name", "POST", "/sign-up/email", {"name": "", "email": "noname@example.com", "password": PASSWORD}),
    Case("sign-up extra fields dropped", "POST", "/sign-up/email",
         {"name": "a", "email": "extra@example.com", "password": PASSWORD, "emailVerified": True, "role": "admin"}),
    Case("sign-up missing name", "POST", "/sign-up/email", {"email": "m1@example.com", "password": PASSWORD}),
    Case("sign-up missing email", "POST", "/sign-up/email", {"name": "a", "password": PASSWORD}),
    Case("sign-up missing password", "POST", "/sign-up/email", {"name": "a", "email": "m3@example.com"}),
    Case("sign-up empty object", "POST", "/sign-up/email", {}),
    Case("sign-up no body", "POST", "/sign-up/email", headers={"content-type": "application/json"}),
    Case("sign-up malformed JSON", "POST", "/sign-up/email", content=b"{not json",
         headers={"content-type": "application/json"}),
    Case("sign-up bad email", "POST", "/sign-up/email", {"name": "a", "email": "not-an-email", "password": PASSWORD}),
    Case("sign-up spaced email", "POST", "/sign-up/email",
         {"name": "a", "email": "  spaced@example.com ", "password": PASSWORD}),
    Case("sign-up password is a number", "POST", "/sign-up/email",
         {"name": "a", "email": "num@example.com", "password": 12345678}),
    Case("sign-up text/plain body", "POST", "/sign-up/email",
         content=json.dumps({"name": "a", "email": "tp@example.com", "password": PASSWORD}).encode(),
         headers={"content-type": "text/plain"}),
    Case("sign-up form-encoded", "POST", "/sign-up/email",
         content=_form({"name": "Form", "email": "form@example.com", "password": PASSWORD}), headers=FORM),
    Case("sign-up hostile Origin", "POST", "/sign-up/email",
         {"name": "a", "email": "evil@example.com", "password": PASSWORD}, headers={"origin": "http://evil.test"}),
    Case("sign-up cookie without Origin", "POST", "/sign-up/email",
         {"name": "a", "email": "cookie@example.com", "password": PASSWORD}, headers={"cookie": "foo=bar"},
         with_origin=False),
    Case("sign-up no Origin, no Sec-Fetch", "POST", "/sign-up/email",
         {"name": "a", "email": "server@example.com", "password": PASSWORD}, with_origin=False),
    # Sign-in
    Case("sign-in ok", "POST", "/sign-in/email", {"email": "dee@example.com", "password": PASSWORD}, capture="session"),
    Case("sign-in upper-case email", "POST", "/sign-in/email", {"email": "DEE@EXAMPLE.COM", "password": PASSWORD}),
    Case("sign-in wrong password", "POST", "/sign-in/email", {"email": "dee@example.com", "password": "wrong-password"}),
    Case("sign-in unknown email", "POST", "/sign-in/email", {"email": "nobody@example.com", "password": PASSWORD}),
    Case("sign-in 1-char password", "POST", "/sign-in/email", {"email": "dee@example.com", "password": "x"}),
    Case("sign-in password 129 chars", "POST", "/sign-in/email", {"email": "dee@example.com", "password": "a" * 129}),
    Case("sign-in bad email", "POST", "/sign-in/email", {"email": "nope", "password": PASSWORD}),
    Case("sign-in missing password", "POST", "/sign-in/email", {"email": "dee@example.com"}),
    Case("sign-in form-encoded", "POST", "/sign-in/email",
         content=_form({"email": "dee@example.com", "password": PASSWORD}), headers=FORM),
    Case("sign-in hostile Origin", "POST", "/sign-in/email", {"email": "dee@example.com", "password": PASSWORD},
         headers={"origin": "http://evil.test"}),
    Case("sign-in cross-site navigation", "POST", "/sign-in/email", {"email": "dee@example.com", "password": PASSWORD},
         headers={"sec-fetch-site": "cross-site", "sec-fetch-mode": "navigate"}, with_origin=False),
    Case("sign-in Sec-Fetch cors without Origin", "POST", "/sign-in/email",
         {"email": "dee@example.com", "password": PASSWORD},
         headers={"sec-fetch-site": "cross-site", "sec-fetch-mode": "cors"}, with_origin=False),
    Case("sign-in cookie without Origin", "POST", "/sign-in/email", {"email": "dee@example.com", "password": PASSWORD},
         headers={"cookie": "foo=bar"}, with_origin=False),
    Case("sign-in trusted Referer only", "POST", "/sign-in/email", {"email": "dee@example.com", "password": PASSWORD},
         headers=lambda state: {"referer": f"{state['origin']}/login"}, with_origin=False),
    Case("sign-in relative callbackURL", "POST", "/sign-in/email",
         {"email": "dee@example.com", "password": PASSWORD, "callbackURL": "/dashboard"}),
    Case("sign-in hostile callbackURL", "POST", "/sign-in/email",
         {"email": "dee@example.com", "password": PASSWORD, "callbackURL": "https://evil.test/x"}),
    Case("sign-in rememberMe false", "POST", "/sign-in/email",
         {"email": "dee@example.com", "password": PASSWORD, "rememberMe": False}),
    # Sessions, tokens, keys
    Case("get-session cookie", "GET", "/get-session", headers=_cookie),
    Case("get-session bearer signed", "GET", "/get-session", headers=_bearer("signed")),
    Case("get-session bearer raw", "GET", "/get-session", headers=_bearer("raw")),
    Case("get-session bearer URL-encoded", "GET", "/get-session",
         headers=lambda state: {"authorization": f"Bearer {quote(state['signed'], safe='')}"}),
    Case("get-session bearer bad signature", "GET", "/get-session", headers=_bad_signature),
    Case("get-session bearer unknown token", "GET", "/get-session", headers={"authorization": "Bearer nottherighttoken"}),
    Case("get-session no auth", "GET", "/get-session"),
    Case("get-session POST", "POST", "/get-session", {}, headers=_bearer("signed")),
    Case("token bearer", "GET", "/token", headers=_bearer("signed")),
    Case("token no auth", "GET", "/token"),
    Case("token bearer unknown token", "GET", "/token", headers={"authorization": "Bearer nottherighttoken"}),
    Case("jwks", "GET", "/jwks"),
    Case("ok", "GET", "/ok"),
    # Sign-out
    Case("sign-out cookie without Origin", "POST", "/sign-out", {}, headers=_cookie, with_origin=False),
    Case("get-session after refused sign-out", "GET", "/get-session", headers=_bearer("signed")),
    Case("sign-out cookie hostile Origin", "POST", "/sign-out", {},
         headers=lambda state: {**_cookie(state), "origin": "http://evil.test"}),
    Case("sign-out cookie with Origin", "POST", "/sign-out", {}, headers=_cookie),
    Case("get-session after sign-out", "GET", "/get-session", headers=_bearer("signed")),
    Case("sign-in again", "POST", "/sign-in/email", {"email": "dee@example.com", "password": PASSWORD}, capture="session"),
    Case("sign-out bearer hostile Origin", "POST", "/sign-out", {},
         headers=lambda state: {**_bearer("signed")(state), "origin": "http://evil.test"}),
    Case("get-session after bearer sign-out", "GET", "/get-session", headers=_bearer("signed")),
    Case("sign-out without session", "POST", "/sign-out", {}),
    # Routing
    Case("unknown path", "GET", "/no-such-route"),
    Case("GET on a POST route", "GET", "/sign-up/email"),
    Case("OPTIONS sign-in", "OPTIONS", "/sign-in/email"),
    Case("HEAD jwks", "HEAD", "/jwks"),
]

CASE_NAMES = [case.name for case in CASES]


def _resolve(value: Any, state: dict) -> Any:
    return value(state) if callable(value) else value


def _observe_response(response: httpx.Response) -> Observation:
    body: Any = None
    if response.content:
        try:
            body = response.json()
        except ValueError:
            body = response.text
    code = body.get("code") if isinstance(body, dict) else None
    message = body.get("message") if isinstance(body, dict) else None
    cookies = dict(parse_set_cookie(header) for header in response.headers.get_list("set-cookie"))
    exposed = {
        item.strip().lower()
        for header in response.headers.get_list("access-control-expose-headers")
        for item in header.split(",")
        if item.strip()
    }
    return Observation(
        status=response.status_code,
        code=code,
        body_shape=shape(body) if response.content else "<empty>",
        cookies=cookies,
        header_presence={
            "set-auth-token": "set-auth-token" in response.headers,
            "set-auth-jwt": "set-auth-jwt" in response.headers,
            "location": "location" in response.headers,
        },
        exposed_headers=frozenset(exposed),
        content_type=response.headers.get("content-type"),
        cache_control=response.headers.get("cache-control"),
        message=message,
        raw_body=body,
    )


def observe(origin: str) -> dict[str, Observation]:
    """Run every case against the server at `origin` (its database must be empty) and return the results."""
    state: dict[str, Any] = {"origin": origin}
    results: dict[str, Observation] = {}
    with httpx.Client(base_url=f"{origin}/api/auth", timeout=30.0) as client:
        for case in CASES:
            headers = dict(_resolve(case.headers, state))
            if case.with_origin and "origin" not in headers:
                headers["origin"] = origin
            content = _resolve(case.content, state)
            # Every cookie a case sends is in its own headers, so nothing may carry over between cases.
            client.cookies.clear()
            if case.json_body is not None:
                response = client.request(case.method, case.path, json=case.json_body, headers=headers)
            else:
                response = client.request(case.method, case.path, content=content, headers=headers)
            observation = _observe_response(response)
            results[case.name] = observation
            if case.capture == "session":
                state["signed"] = response.headers["set-auth-token"]
                state["raw"] = observation.raw_body["token"]
    return results
