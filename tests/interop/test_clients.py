"""Better Auth's own clients against aibrain's auth service, and their JWTs on aibrain's events API.

The JavaScript client is `createAuthClient` from better-auth 1.7.29 (client.mjs); the Python client
is the PyPI package better-auth-client 1.0.1. The Python client also runs against a real Better
Auth, so a failure on aibrain alone points at aibrain.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import httpx
import pytest
from better_auth_client import APIError, AuthClient

from tests.servers import Service

from .better_auth_process import BetterAuthServer, run_client

pytestmark = pytest.mark.interop

PASSWORD = "correct horse battery"


@pytest.fixture(scope="module")
def auth(start_aibrain: Callable[..., Service]) -> Service:
    """aibrain's auth service with its default settings (RS256, argon2id), rate limiting off."""
    return start_aibrain("auth")


@pytest.fixture(scope="module")
def api(auth: Service, start_aibrain: Callable[..., Service]) -> Service:
    """aibrain's events API trusting `auth`."""
    return start_aibrain("api", auth_url=auth.url)


@pytest.fixture(scope="module")
def reference(start_reference: Callable[..., BetterAuthServer]) -> BetterAuthServer:
    return start_reference(alg="RS256")


def me(api: Service, token: str) -> httpx.Response:
    return httpx.get(f"{api.url}/me", headers={"authorization": f"Bearer {token}"})


# Better Auth's JavaScript client


@pytest.fixture(scope="module")
def js_summary(auth: Service) -> dict:
    return run_client(auth.url, "js-client@example.com", PASSWORD)


@pytest.mark.parametrize(
    "step", ["signUp", "signIn", "getSession", "token", "jwks", "signOut", "getSessionAfterSignOut"]
)
def test_js_client_step_succeeds(js_summary: dict, step: str) -> None:
    assert js_summary["steps"][step]["status"] == 200, js_summary["steps"][step]


def test_js_client_session_user(js_summary: dict) -> None:
    session = js_summary["steps"]["getSession"]["data"]
    assert session["user"]["id"] == js_summary["userId"]
    assert session["session"]["token"] == js_summary["signInToken"]


def test_js_client_signed_out(js_summary: dict) -> None:
    assert js_summary["steps"]["signOut"]["data"] == {"success": True}
    assert js_summary["steps"]["getSessionAfterSignOut"]["data"] is None


def test_js_client_jwks_has_signing_kid(js_summary: dict) -> None:
    assert js_summary["jwksKids"]
    assert js_summary["steps"]["token"]["data"]["token"] == js_summary["tokenJwt"]


@pytest.mark.parametrize("jwt_source", ["tokenJwt", "sessionJwt"])
def test_js_client_jwt_works_on_api(js_summary: dict, api: Service, jwt_source: str) -> None:
    response = me(api, js_summary[jwt_source])
    assert response.status_code == 200, response.text
    assert response.json()["id"] == js_summary["userId"]


def test_js_client_duplicate_sign_up_error(auth: Service) -> None:
    run_client(auth.url, "js-twice@example.com", PASSWORD)
    second = run_client(auth.url, "js-twice@example.com", PASSWORD)
    assert second["steps"]["signUp"]["status"] == 422
    assert second["steps"]["signUp"]["code"] == "USER_ALREADY_EXISTS_USE_ANOTHER_EMAIL"
    assert second["steps"]["signIn"]["status"] == 200


# The Python client (PyPI better-auth-client)


@pytest.fixture(params=["better-auth", "aibrain"])
def server_url(request: pytest.FixtureRequest) -> str:
    if request.param == "better-auth":
        return request.getfixturevalue("reference").url
    return request.getfixturevalue("auth").url


@pytest.fixture
def python_client(server_url: str) -> Iterator[AuthClient]:
    with AuthClient(server_url) as client:
        yield client


def test_python_client_flow(python_client: AuthClient, server_url: str) -> None:
    email = f"py-flow-{server_url.rsplit(':', 1)[1]}@example.com"

    signed_up = python_client.sign_up.email(name="Py", email=email, password=PASSWORD)
    signed_in = python_client.sign_in.email(email=email, password=PASSWORD)
    session = python_client.get_session()
    signed_out = python_client.sign_out()
    after = python_client.get_session()

    assert signed_up["user"]["email"] == email
    assert signed_in["user"]["id"] == signed_up["user"]["id"]
    assert session["user"]["id"] == signed_up["user"]["id"]
    assert session["session"]["token"] == signed_in["token"]
    assert signed_out == {"success": True}
    assert after is None


def test_python_client_wrong_password_error(python_client: AuthClient, server_url: str) -> None:
    email = f"py-wrong-{server_url.rsplit(':', 1)[1]}@example.com"
    python_client.sign_up.email(name="Py", email=email, password=PASSWORD)

    with pytest.raises(APIError) as raised:
        python_client.sign_in.email(email=email, password="not the password")

    assert raised.value.status == 401
    assert raised.value.code == "INVALID_EMAIL_OR_PASSWORD"


def test_python_client_bearer_session(server_url: str) -> None:
    email = f"py-bearer-{server_url.rsplit(':', 1)[1]}@example.com"
    with AuthClient(server_url) as signer:
        signer.sign_up.email(name="Py", email=email, password=PASSWORD)
        signed_in = signer.sign_in.email(email=email, password=PASSWORD)
    # A second client without cookies, carrying only the bearer token a service would forward.
    with AuthClient(server_url) as relay:
        relay.set_bearer(signed_in["token"])
        session = relay.get_session()
    assert session["session"]["token"] == signed_in["token"]


def test_python_client_token_works_on_api(auth: Service, api: Service) -> None:
    with AuthClient(auth.url) as client:
        user = client.sign_up.email(name="Py", email="py-api@example.com", password=PASSWORD)["user"]
        token = client.token()["token"]
    response = me(api, token)
    assert response.status_code == 200, response.text
    assert response.json()["id"] == user["id"]
