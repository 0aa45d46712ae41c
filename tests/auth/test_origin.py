import pytest
from starlette.datastructures import Headers

from aibrain.auth.origin import OriginPolicy
from aibrain.errors import ServiceError

OWN = "http://127.0.0.1:3000"


def policy() -> OriginPolicy:
    return OriginPolicy(OWN, ["https://*.example.com"])


def code_of(check, headers: dict[str, str]) -> str | None:
    try:
        check(Headers(headers))
    except ServiceError as error:
        return error.code
    return None


def test_sign_in_plain_server_call_passes():
    assert code_of(policy().check_sign_in, {}) is None


def test_sign_in_hostile_origin_rejected():
    assert code_of(policy().check_sign_in, {"origin": "http://evil.test"}) == "INVALID_ORIGIN"


def test_sign_in_cross_site_navigation_blocked():
    headers = {"sec-fetch-site": "cross-site", "sec-fetch-mode": "navigate"}
    assert code_of(policy().check_sign_in, headers) == "CROSS_SITE_NAVIGATION_LOGIN_BLOCKED"


def test_sign_in_sec_fetch_cors_without_origin_rejected():
    headers = {"sec-fetch-site": "cross-site", "sec-fetch-mode": "cors"}
    assert code_of(policy().check_sign_in, headers) == "MISSING_OR_NULL_ORIGIN"


def test_sign_in_cookie_without_origin_rejected():
    assert code_of(policy().check_sign_in, {"cookie": "foo=bar"}) == "MISSING_OR_NULL_ORIGIN"


def test_sign_in_referer_stands_in_for_origin():
    assert code_of(policy().check_sign_in, {"cookie": "a=b", "referer": OWN + "/login"}) is None


def test_post_null_origin_same_origin_fetch_passes():
    headers = {"cookie": "a=b", "origin": "null", "sec-fetch-site": "same-origin"}
    assert code_of(policy().check_post, headers) is None


def test_post_wildcard_trusted_origin_passes():
    assert code_of(policy().check_post, {"cookie": "a=b", "origin": "https://app.example.com"}) is None


def test_post_without_cookie_is_not_checked():
    assert code_of(policy().check_post, {"origin": "http://evil.test"}) is None


@pytest.mark.parametrize("url", ["/dashboard", "http://127.0.0.1:3000/x", "https://app.example.com/y"])
def test_callback_url_allowed(url):
    policy().check_url_fields({"callbackURL": url})


@pytest.mark.parametrize("url", ["https://evil.test/x", "//evil.test/x", "/\\evil.test", "javascript:alert(1)"])
def test_callback_url_rejected(url):
    with pytest.raises(ServiceError) as caught:
        policy().check_url_fields({"callbackURL": url})
    assert caught.value.code == "INVALID_CALLBACK_URL"
