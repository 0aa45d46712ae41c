import pytest

from aibrain.auth.validation import SIGN_IN_FIELDS, SIGN_UP_FIELDS, UNDEFINED, is_email, parse_body, validate
from aibrain.errors import ServiceError


@pytest.mark.parametrize("email", ["a@b.co", "A+Tag@Sub.Example.COM", "o'neil@example.com", "a_b-c@x-y.example.org"])
def test_is_email_accepts_zod_practical_addresses(email):
    assert is_email(email)


@pytest.mark.parametrize(
    "email",
    [
        "user@localhost",
        "üser@example.com",
        "a..b@example.com",
        ".a@example.com",
        "a@example.c",
        "a@-example.com",
        "a@example.com.",
        "  spaced@example.com ",
        "jac\u212a@example.com",
        "jack@ex\u0430mple.com",
        "o'@example.com",
        "a@example.com\n",
    ],
)
def test_is_email_rejects_what_better_auth_rejects(email):
    assert not is_email(email)


def test_parse_body_empty_is_undefined():
    assert parse_body("application/json", b"") is UNDEFINED


def test_parse_body_form_encoded():
    body = parse_body("application/x-www-form-urlencoded", b"email=a%40b.co&rememberMe=false")
    assert body == {"email": "a@b.co", "rememberMe": False}


def test_parse_body_malformed_json_is_bad_request():
    with pytest.raises(ServiceError, match="Invalid JSON in request body") as caught:
        parse_body("application/json", b"{nope")
    assert caught.value.code == "BAD_REQUEST"


def test_parse_body_rejects_nan():
    with pytest.raises(ServiceError):
        parse_body("application/json", b'{"a": NaN}')


def test_parse_body_other_content_type_is_415():
    with pytest.raises(ServiceError, match='Content-Type "text/plain" is not allowed') as caught:
        parse_body("text/plain", b"x")
    assert caught.value.status == 415


def test_validate_lists_every_missing_field():
    with pytest.raises(ServiceError) as caught:
        validate({}, SIGN_UP_FIELDS, record_check=True, email_format=True)
    assert caught.value.message == (
        "[body.name] Invalid input: expected string, received undefined; "
        "[body.email] Invalid input: expected string, received undefined; "
        "[body.password] Invalid input: expected string, received undefined"
    )


def test_validate_names_received_type():
    with pytest.raises(ServiceError, match=r"\[body.password\] Invalid input: expected string, received number"):
        validate({"email": "a@b.co", "password": 12345678}, SIGN_IN_FIELDS)


def test_validate_absent_body_on_sign_up_mentions_record():
    with pytest.raises(ServiceError) as caught:
        validate(UNDEFINED, SIGN_UP_FIELDS, record_check=True)
    assert caught.value.message == (
        "[body] Invalid input: expected object, received undefined; "
        "[body] Invalid input: expected record, received undefined"
    )


def test_validate_bad_email_on_sign_up():
    with pytest.raises(ServiceError, match=r"\[body.email\] Invalid email address"):
        validate({"name": "", "email": "nope", "password": "x" * 8}, SIGN_UP_FIELDS, email_format=True)


def test_validate_keeps_unknown_fields_out_of_the_checks():
    body = {"name": "", "email": "a@b.co", "password": "x" * 8, "role": "admin"}
    assert validate(body, SIGN_UP_FIELDS, email_format=True) is body
