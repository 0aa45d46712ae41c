import re
from urllib.parse import quote

from aibrain.auth.tokens import TokenSigner, new_id

SECRET = "test-secret-0123456789-abcdefghijklmnop"


def test_new_id_has_better_auth_format():
    assert re.fullmatch(r"[A-Za-z0-9]{32}", new_id())


def test_new_id_differs_each_call():
    assert len({new_id() for _ in range(100)}) == 100


def test_token_signer_signature_is_padded_base64():
    signed = TokenSigner(SECRET).sign("abc")
    signature = signed.split(".", 1)[1]
    assert len(signature) == 44
    assert signature.endswith("=")


def test_token_signer_unsign_round_trip():
    signer = TokenSigner(SECRET)
    assert signer.unsign(signer.sign("abc")) == "abc"


def test_token_signer_unsign_url_encoded():
    signer = TokenSigner(SECRET)
    assert signer.unsign(quote(signer.sign("abc"), safe="")) == "abc"


def test_token_signer_rejects_other_secret():
    signed = TokenSigner(SECRET).sign("abc")
    assert TokenSigner(SECRET + "x").unsign(signed) is None


def test_token_signer_rejects_malformed_values():
    signer = TokenSigner(SECRET)
    for value in ["", "abc", "abc.def", ".", "abc." + "=" * 44, "a.b.c"]:
        assert signer.unsign(value) is None, value


def test_token_signer_splits_at_last_dot():
    signer = TokenSigner(SECRET)
    assert signer.unsign(signer.sign("a.b")) == "a.b"
