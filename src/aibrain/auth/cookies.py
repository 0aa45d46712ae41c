"""Session cookies and the bearer header, in Better Auth's names and attributes."""

from __future__ import annotations

from urllib.parse import quote

from starlette.requests import Request

from aibrain.auth.tokens import TokenSigner

COOKIE_PREFIX = "better-auth"


class SessionCookies:
    """Build Set-Cookie values and read the session token from a request."""

    def __init__(self, signer: TokenSigner, *, secure: bool) -> None:
        self._signer = signer
        # Over https Better Auth adds Secure and the __Secure- prefix, which browsers then enforce.
        prefix = f"__Secure-{COOKIE_PREFIX}" if secure else COOKIE_PREFIX
        self.session_name = f"{prefix}.session_token"
        self.data_name = f"{prefix}.session_data"
        self.dont_remember_name = f"{prefix}.dont_remember"
        self._attributes = "Path=/; HttpOnly; SameSite=Lax" + ("; Secure" if secure else "")

    def _cookie(self, name: str, value: str, max_age: int | None) -> str:
        age = f"Max-Age={max_age}; " if max_age is not None else ""
        return f"{name}={value}; {age}{self._attributes}"

    def session(self, signed_token: str, max_age: int | None) -> str:
        return self._cookie(self.session_name, quote(signed_token, safe=""), max_age)

    def dont_remember(self) -> str:
        return self._cookie(self.dont_remember_name, quote(self._signer.sign("true"), safe=""), None)

    def clearing(self) -> list[str]:
        """Return the three Set-Cookie values Better Auth sends to end a session in the browser."""
        names = (self.session_name, self.data_name, self.dont_remember_name)
        return [self._cookie(name, "", 0) for name in names]

    def has_dont_remember(self, request: Request) -> bool:
        value = request.cookies.get(self.dont_remember_name)
        return value is not None and self._signer.unsign(value) == "true"

    def session_token(self, request: Request) -> str | None:
        """Return the raw session token from the bearer header or the cookie, if correctly signed.

        The bearer value may be the signed token, its URL-encoded form, or the raw token, which is
        signed here as Better Auth's bearer plugin does. A bad signature counts as no token.
        """
        authorization = request.headers.get("authorization")
        if authorization:
            scheme, _, value = authorization.partition(" ")
            value = value.strip()
            if scheme.lower() == "bearer" and value:
                if "." not in value and "%2E" not in value.upper():
                    value = self._signer.sign(value)
                token = self._signer.unsign(value)
                if token is not None:
                    return token
        cookie = request.cookies.get(self.session_name)
        if cookie:
            return self._signer.unsign(cookie)
        return None
