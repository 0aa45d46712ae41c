"""Requests to a Better Auth-compatible auth server that several interop tests share."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import Any

import httpx

PASSWORD = "correct horse battery"


@dataclass
class SignedUpUser:
    """A user signed up on an auth server, with its signed session token."""

    id: str
    email: str
    session_token: str


def sign_up(auth_url: str, email: str, name: str = "Interop User") -> SignedUpUser:
    """Sign a new user up on the server at `auth_url` (an origin) and return it."""
    response = httpx.post(
        f"{auth_url}/api/auth/sign-up/email",
        json={"name": name, "email": email, "password": PASSWORD},
        headers={"origin": auth_url},
    )
    assert response.status_code == 200, response.text
    return SignedUpUser(response.json()["user"]["id"], email, response.headers["set-auth-token"])


def token_from_token_endpoint(auth_url: str, user: SignedUpUser) -> str:
    """Return a JWT for `user` from GET /token."""
    response = httpx.get(f"{auth_url}/api/auth/token", headers=bearer(user.session_token))
    assert response.status_code == 200, response.text
    return response.json()["token"]


def token_from_get_session(auth_url: str, user: SignedUpUser) -> str:
    """Return a JWT for `user` from the set-auth-jwt header of GET /get-session."""
    response = httpx.get(f"{auth_url}/api/auth/get-session", headers=bearer(user.session_token))
    assert response.status_code == 200, response.text
    return response.headers["set-auth-jwt"]


def jose_header(token: str) -> dict[str, Any]:
    """Decode a compact JWT's protected header without verifying anything."""
    encoded = token.split(".")[0]
    return json.loads(base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)))


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}
