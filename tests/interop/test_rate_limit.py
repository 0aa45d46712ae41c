"""Sign-in rate limiting of a real Better Auth 1.7 (forced on) next to aibrain's (on by default).

Both allow 3 sign-in attempts per 10 s from one client and reject the 4th with 429 and an
X-Retry-After header. aibrain's 429 body also carries a `code`, as every aibrain error does, and a
standard Retry-After header; Better Auth's has neither.
"""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest

from tests.servers import Service

from .better_auth_process import BetterAuthServer

pytestmark = pytest.mark.interop

ATTEMPTS = 5


def failed_sign_ins(origin: str) -> list[httpx.Response]:
    """Send ATTEMPTS sign-ins with a wrong password, back to back, and return the responses."""
    body = {"email": "nobody@example.com", "password": "wrong-password"}
    with httpx.Client(base_url=f"{origin}/api/auth", headers={"origin": origin}) as client:
        return [client.post("/sign-in/email", json=body) for _ in range(ATTEMPTS)]


@pytest.fixture(scope="module")
def responses(
    start_reference: Callable[..., BetterAuthServer], start_aibrain: Callable[..., Service]
) -> tuple[list[httpx.Response], list[httpx.Response]]:
    reference = start_reference(rate_limit=True)
    ours = start_aibrain("auth", AIBRAIN_RATE_LIMIT_ENABLED="true")
    return failed_sign_ins(reference.url), failed_sign_ins(ours.url)


def test_rate_limit_status_sequence(responses) -> None:
    reference, ours = responses
    assert [response.status_code for response in reference] == [401, 401, 401, 429, 429]
    assert [response.status_code for response in ours] == [response.status_code for response in reference]


def test_rate_limit_x_retry_after(responses) -> None:
    reference, ours = responses
    assert 0 < int(reference[3].headers["x-retry-after"]) <= 10
    assert 0 < int(ours[3].headers["x-retry-after"]) <= 10


def test_rate_limit_body(responses) -> None:
    reference, ours = responses
    assert reference[3].json() == {"message": "Too many requests. Please try again later."}
    assert ours[3].json()["message"] == reference[3].json()["message"]


def test_documented_rate_limit_body_has_code(responses) -> None:
    reference, ours = responses
    assert "code" not in reference[3].json()
    assert isinstance(ours[3].json()["code"], str)


def test_documented_rate_limit_retry_after(responses) -> None:
    reference, ours = responses
    assert "retry-after" not in reference[3].headers
    assert ours[3].headers["retry-after"] == ours[3].headers["x-retry-after"]
