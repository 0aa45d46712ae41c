"""Rate limiting of the auth service, on by default, against a real server process."""

import httpx
import pytest

from tests.servers import start_auth

SIGN_IN = "/api/auth/sign-in/email"
BODY = {"email": "nobody@example.com", "password": "wrong-password"}


@pytest.fixture(scope="module")
def behind_proxy(tmp_path_factory):
    service = start_auth(
        tmp_path_factory.mktemp("limited"),
        AIBRAIN_RATE_LIMIT_ENABLED="true",
        AIBRAIN_TRUSTED_PROXIES="127.0.0.1",
    )
    yield service
    service.stop()


@pytest.fixture(scope="module")
def direct(tmp_path_factory):
    service = start_auth(tmp_path_factory.mktemp("direct"), AIBRAIN_RATE_LIMIT_ENABLED="true")
    yield service
    service.stop()


def sign_in_statuses(url: str, client_address: str, count: int) -> list[httpx.Response]:
    headers = {"x-forwarded-for": client_address}
    return [httpx.post(url + SIGN_IN, json=BODY, headers=headers) for _ in range(count)]


def test_rate_limit_fourth_sign_in_is_429(behind_proxy):
    responses = sign_in_statuses(behind_proxy.url, "203.0.113.1", 4)
    assert [response.status_code for response in responses] == [401, 401, 401, 429]


def test_rate_limit_429_carries_retry_after_headers(behind_proxy):
    response = sign_in_statuses(behind_proxy.url, "203.0.113.2", 4)[-1]
    assert 1 <= int(response.headers["retry-after"]) <= 10
    assert response.headers["x-retry-after"] == response.headers["retry-after"]


def test_rate_limit_429_body_is_json_error(behind_proxy):
    response = sign_in_statuses(behind_proxy.url, "203.0.113.3", 4)[-1]
    assert response.json() == {"message": "Too many requests. Please try again later.", "code": "TOO_MANY_REQUESTS"}


def test_rate_limit_clients_are_independent(behind_proxy):
    sign_in_statuses(behind_proxy.url, "203.0.113.4", 5)
    assert sign_in_statuses(behind_proxy.url, "203.0.113.5", 1)[0].status_code == 401


def test_rate_limit_other_path_has_own_budget(behind_proxy):
    sign_in_statuses(behind_proxy.url, "203.0.113.6", 5)
    response = httpx.get(behind_proxy.url + "/api/auth/ok", headers={"x-forwarded-for": "203.0.113.6"})
    assert response.status_code == 200


def test_rate_limit_slash_variants_share_a_bucket(behind_proxy):
    headers = {"x-forwarded-for": "203.0.113.7"}
    paths = [SIGN_IN, SIGN_IN + "/", "/api/auth//sign-in/email", SIGN_IN]
    statuses = [httpx.post(behind_proxy.url + path, json=BODY, headers=headers).status_code for path in paths]
    assert statuses == [401, 401, 401, 429]


def test_rate_limit_ignores_forwarded_for_from_untrusted_peer(direct):
    statuses = [
        httpx.post(direct.url + SIGN_IN, json=BODY, headers={"x-forwarded-for": f"198.51.100.{index}"}).status_code
        for index in range(4)
    ]
    assert statuses[-1] == 429
