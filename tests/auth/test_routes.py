"""The auth service's HTTP responses, from a real server process on loopback."""

import base64
import json
import threading
from http.cookiejar import CookieJar, DefaultCookiePolicy

import httpx
import pytest

from tests.servers import TEST_SECRET, start_auth

PASSWORD = "password123"


@pytest.fixture(scope="module")
def auth(tmp_path_factory):
    service = start_auth(tmp_path_factory.mktemp("auth"))
    yield service
    service.stop()


@pytest.fixture
def client(auth):
    # A jar that keeps no cookies: each test sends exactly the cookies it names, as curl would.
    jar = CookieJar(policy=DefaultCookiePolicy(allowed_domains=[]))
    with httpx.Client(base_url=auth.url + "/api/auth", cookies=jar) as client:
        yield client


def sign_up(client, email, password=PASSWORD, **extra):
    return client.post("/sign-up/email", json={"name": "Test", "email": email, "password": password, **extra})


def claims_of(jwt: str) -> dict:
    payload = jwt.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def test_sign_up_returns_token_user_session_and_jwt(client, unique_email):
    body = sign_up(client, unique_email).json()
    assert set(body) == {"token", "user", "session", "jwt"}


def test_sign_up_user_shape_matches_better_auth(client, unique_email):
    user = sign_up(client, unique_email).json()["user"]
    assert list(user) == ["name", "email", "emailVerified", "image", "createdAt", "updatedAt", "id"]


def test_sign_up_lowercases_email(client, unique_email):
    user = sign_up(client, unique_email.upper().replace("@EXAMPLE.COM", "@Example.COM")).json()["user"]
    assert user["email"] == unique_email


def test_sign_up_sets_signed_cookie_and_headers(client, unique_email):
    response = sign_up(client, unique_email)
    token = response.json()["token"]
    assert response.headers["set-auth-token"].startswith(token + ".")
    assert response.headers["set-cookie"].startswith("better-auth.session_token=" + token + ".")
    assert "Max-Age=604800; Path=/; HttpOnly; SameSite=Lax" in response.headers["set-cookie"]


def test_sign_up_jwt_header_matches_body(client, unique_email):
    response = sign_up(client, unique_email)
    assert response.headers["set-auth-jwt"] == response.json()["jwt"]


def test_sign_up_jwt_claims(client, unique_email, auth):
    body = sign_up(client, unique_email).json()
    claims = claims_of(body["jwt"])
    assert claims["sub"] == body["user"]["id"]
    assert claims["iss"] == auth.url
    assert claims["aud"] == auth.url
    assert claims["exp"] - claims["iat"] == 900


def test_sign_up_ignores_unknown_fields(client, unique_email):
    user = sign_up(client, unique_email, emailVerified=True, id="x", role="admin").json()["user"]
    assert user["emailVerified"] is False
    assert user["id"] != "x"


def test_sign_up_duplicate_email_any_case_is_422(client, unique_email):
    sign_up(client, unique_email)
    response = sign_up(client, unique_email.upper())
    assert response.status_code == 422
    assert response.json()["code"] == "USER_ALREADY_EXISTS_USE_ANOTHER_EMAIL"


@pytest.mark.parametrize(
    ("password", "status", "code"),
    [
        ("1234567", 400, "PASSWORD_TOO_SHORT"),
        ("a" * 129, 400, "PASSWORD_TOO_LONG"),
        ("😀" * 65, 400, "PASSWORD_TOO_LONG"),
        ("😀" * 4, 200, None),
        ("😀" * 64, 200, None),
        ("a" * 128, 200, None),
    ],
)
def test_sign_up_password_length_in_utf16_units(client, unique_email, password, status, code):
    response = sign_up(client, unique_email, password=password)
    assert response.status_code == status
    assert response.json().get("code") == code


def test_sign_up_form_encoded(client, unique_email):
    response = client.post("/sign-up/email", data={"name": "F", "email": unique_email, "password": PASSWORD})
    assert response.status_code == 200


def test_sign_up_hostile_origin_is_403(client, unique_email):
    response = client.post(
        "/sign-up/email",
        json={"name": "x", "email": unique_email, "password": PASSWORD},
        headers={"origin": "http://evil.test"},
    )
    assert response.status_code == 403
    assert response.json()["code"] == "INVALID_ORIGIN"


def test_sign_up_concurrent_same_email_creates_one_user(auth, unique_email):
    statuses = []

    def attempt(index):
        email = unique_email if index % 2 else unique_email.upper()
        response = httpx.post(
            auth.url + "/api/auth/sign-up/email", json={"name": "x", "email": email, "password": PASSWORD}, timeout=30
        )
        statuses.append(response.status_code)

    threads = [threading.Thread(target=attempt, args=(index,)) for index in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert statuses.count(200) == 1
    assert statuses.count(422) == 19


def test_sign_in_returns_redirect_false_and_jwt(client, unique_email):
    sign_up(client, unique_email)
    body = client.post("/sign-in/email", json={"email": unique_email, "password": PASSWORD}).json()
    assert body["redirect"] is False
    assert "url" not in body
    assert body["jwt"]


def test_sign_in_upper_case_email(client, unique_email):
    sign_up(client, unique_email)
    response = client.post("/sign-in/email", json={"email": unique_email.upper(), "password": PASSWORD})
    assert response.status_code == 200


def test_sign_in_callback_url_sets_location(client, unique_email):
    sign_up(client, unique_email)
    response = client.post(
        "/sign-in/email", json={"email": unique_email, "password": PASSWORD, "callbackURL": "/dashboard"}
    )
    assert response.headers["location"] == "/dashboard"
    assert response.json()["url"] == "/dashboard"


def test_sign_in_failures_look_alike(client, unique_email):
    sign_up(client, unique_email)
    wrong = client.post("/sign-in/email", json={"email": unique_email, "password": "wrong-password"})
    unknown = client.post("/sign-in/email", json={"email": "nobody-" + unique_email, "password": PASSWORD})
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json() == unknown.json() == {"message": "Invalid email or password", "code": "INVALID_EMAIL_OR_PASSWORD"}


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"email": "nope", "password": "x"}, 400, "INVALID_EMAIL"),
        ({"email": "a@b.co", "password": "a" * 129}, 400, "PASSWORD_TOO_LONG"),
        ({"email": "a@b.co"}, 400, "VALIDATION_ERROR"),
        ({"email": "a@b.co", "password": "x"}, 401, "INVALID_EMAIL_OR_PASSWORD"),
    ],
)
def test_sign_in_rejections(client, body, status, code):
    response = client.post("/sign-in/email", json=body)
    assert response.status_code == status
    assert response.json()["code"] == code


def test_sign_in_huge_password_rejected(client):
    response = client.post("/sign-in/email", json={"email": "a@b.co", "password": "a" * 1_048_576})
    assert response.status_code == 400
    assert response.json()["code"] == "PASSWORD_TOO_LONG"


def test_get_session_with_raw_bearer(client, unique_email):
    token = sign_up(client, unique_email).json()["token"]
    response = client.get("/get-session", headers={"authorization": f"Bearer {token}"})
    assert response.json()["session"]["token"] == token
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["set-auth-jwt"]


def test_get_session_with_signed_cookie(client, unique_email):
    response = sign_up(client, unique_email)
    cookie = response.headers["set-cookie"].split(";")[0]
    session = client.get("/get-session", headers={"cookie": cookie}).json()
    assert session["user"]["email"] == unique_email


def test_get_session_bad_signature_is_null_without_cookies(client, unique_email):
    token = sign_up(client, unique_email).json()["token"]
    response = client.get("/get-session", headers={"cookie": f"better-auth.session_token={token}.AAAA"})
    assert response.json() is None
    assert "set-cookie" not in response.headers


def test_get_session_unknown_token_clears_cookies(client):
    response = client.get("/get-session", headers={"authorization": "Bearer nottherighttoken"})
    assert response.json() is None
    assert len(response.headers.get_list("set-cookie")) == 3


def test_get_session_post_is_405(client):
    response = client.post("/get-session")
    assert response.status_code == 405
    assert response.json()["code"] == "METHOD_NOT_ALLOWED_DEFER_SESSION_REQUIRED"


def test_token_returns_jwt(client, unique_email):
    token = sign_up(client, unique_email).json()["token"]
    jwt = client.get("/token", headers={"authorization": f"Bearer {token}"}).json()["token"]
    assert claims_of(jwt)["email"] == unique_email


def test_token_without_session_is_401(client):
    response = client.get("/token")
    assert response.status_code == 401
    assert response.json()["code"] == "UNAUTHORIZED"


def test_sign_out_ends_session(client, unique_email):
    token = sign_up(client, unique_email).json()["token"]
    headers = {"authorization": f"Bearer {token}"}
    assert client.post("/sign-out", headers=headers).json() == {"success": True}
    assert client.get("/get-session", headers=headers).json() is None


def test_sign_out_cookie_without_origin(client, unique_email):
    response = sign_up(client, unique_email)
    cookie = response.headers["set-cookie"].split(";")[0]
    refused = client.post("/sign-out", headers={"cookie": cookie})
    assert refused.status_code == 403
    assert client.get("/get-session", headers={"cookie": cookie}).json() is not None


def test_jwks_publishes_rs256_key_with_cache_header(client):
    response = client.get("/jwks")
    key = response.json()["keys"][0]
    assert key["alg"] == "RS256"
    assert "max-age" in response.headers["cache-control"]


def test_ok(client):
    assert client.get("/ok").json() == {"ok": True}


def test_unknown_route_is_json_404(client):
    response = client.get("/nope")
    assert response.status_code == 404
    assert response.json()["code"] == "NOT_FOUND"


def test_double_slash_path_is_normalised(client, auth):
    assert client.get(auth.url + "/api/auth//ok/").json() == {"ok": True}


def test_malformed_json_is_400(client):
    response = client.post("/sign-in/email", content=b"{", headers={"content-type": "application/json"})
    assert response.json() == {"message": "Invalid JSON in request body", "code": "BAD_REQUEST"}


def test_forwarded_host_does_not_change_issuer(client, unique_email, auth):
    client.get("/ok", headers={"x-forwarded-proto": "some:", "x-forwarded-host": "junk"})
    body = sign_up(client, unique_email).json()
    assert claims_of(body["jwt"])["iss"] == auth.url


def test_log_never_contains_password_or_secret(auth, client, unique_email):
    sign_up(client, unique_email, password="do-not-log-this-password")
    text = auth.log_text()
    assert "do-not-log-this-password" not in text
    assert TEST_SECRET not in text
