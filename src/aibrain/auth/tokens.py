"""Random ids and the HMAC-signed session token form Better Auth puts in cookies and headers.

The signed form is `<token>.<signature>`, where the signature is the standard (not URL-safe) base64,
with padding, of HMAC-SHA256 keyed with the UTF-8 secret over the token. It is always 44 characters
ending in `=`; Better Auth treats any other signature shape as no token at all.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import string
from urllib.parse import unquote

_ID_ALPHABET = string.ascii_letters + string.digits
SIGNATURE_LENGTH = 44


def new_id() -> str:
    """Return 32 uniformly random characters from [A-Za-z0-9], Better Auth's id and token format."""
    return "".join(secrets.choice(_ID_ALPHABET) for _ in range(32))


class TokenSigner:
    """Sign and verify session tokens with the service secret."""

    def __init__(self, secret: str) -> None:
        self._key = secret.encode("utf-8")

    def signature(self, token: str) -> str:
        digest = hmac.new(self._key, token.encode("utf-8"), hashlib.sha256).digest()
        return base64.b64encode(digest).decode("ascii")

    def sign(self, token: str) -> str:
        return f"{token}.{self.signature(token)}"

    def unsign(self, value: str) -> str | None:
        """Return the token inside a signed value, or None when the signature is absent or wrong.

        The value is split at the last dot, as Better Auth does, and may still be URL-encoded.
        """
        if "%" in value:
            value = unquote(value)
        token, dot, signature = value.rpartition(".")
        if not dot or len(signature) != SIGNATURE_LENGTH or not signature.endswith("="):
            return None
        if not hmac.compare_digest(self.signature(token), signature):
            return None
        return token
