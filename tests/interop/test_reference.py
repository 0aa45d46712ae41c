"""Self-checks of the harness: server.mjs and client.mjs against each other, before they judge aibrain."""

from __future__ import annotations

import warnings

import httpx
import pytest
from joserfc import jwt
from joserfc.errors import SecurityWarning
from joserfc.jwk import KeySet

from .better_auth_process import BetterAuthServer, run_client

pytestmark = pytest.mark.interop


def _verify(token: str, server: BetterAuthServer) -> jwt.Token:
    keys = KeySet.import_key_set(httpx.get(f"{server.auth_url}/jwks").json())
    # Better Auth 1.7 names Ed25519 signatures "EdDSA", which joserfc 1.8 flags as deprecated (RFC 9864).
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "EdDSA is deprecated", SecurityWarning)
        return jwt.decode(token, keys, algorithms=["RS256", "EdDSA"])


def test_reference_server_migrations_create_tables(better_auth: BetterAuthServer) -> None:
    assert set(better_auth.migrations["createdTables"]) == {"user", "session", "account", "verification", "jwks"}


def test_reference_client_full_flow_statuses(better_auth: BetterAuthServer) -> None:
    summary = run_client(better_auth.url, f"harness-{better_auth.port}@example.com")
    statuses = {name: step["status"] for name, step in summary["steps"].items()}
    assert statuses == {
        "signUp": 200,
        "signIn": 200,
        "getSession": 200,
        "token": 200,
        "jwks": 200,
        "signOut": 200,
        "getSessionAfterSignOut": 200,
    }
    assert summary["steps"]["getSession"]["data"]["user"]["id"] == summary["userId"]
    assert summary["steps"]["getSessionAfterSignOut"]["data"] is None


def test_reference_client_jwts_verify(better_auth: BetterAuthServer, request: pytest.FixtureRequest) -> None:
    summary = run_client(better_auth.url, f"jwt-{better_auth.port}@example.com")
    alg = request.node.callspec.params["better_auth"]
    for token in (summary["sessionJwt"], summary["tokenJwt"]):
        verified = _verify(token, better_auth)
        claims = verified.claims
        assert verified.header["alg"] == alg
        assert claims["sub"] == summary["userId"]
        assert claims["iss"] == better_auth.url
        assert claims["aud"] == better_auth.url
