"""The auth endpoints under /api/auth, with Better Auth 1.7's requests and responses.

Differences on purpose: sign-up and sign-in bodies also carry `session` and `jwt` (with a
`set-auth-jwt` header), so one round trip gives a client everything. Errors always have a `code`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine
from starlette.requests import Request
from starlette.responses import Response

from aibrain.auth import store
from aibrain.auth.cookies import SessionCookies
from aibrain.auth.jwts import JwtMinter
from aibrain.auth.keys import KeyStore
from aibrain.auth.origin import OriginPolicy
from aibrain.auth.passwords import MAX_PASSWORD_LENGTH, MIN_PASSWORD_LENGTH, Passwords, utf16_length
from aibrain.auth.ratelimit import TrustedProxies
from aibrain.auth.tokens import TokenSigner
from aibrain.auth.validation import SIGN_IN_FIELDS, SIGN_UP_FIELDS, is_email, parse_body, validate
from aibrain.errors import JSONResponse, ServiceError
from aibrain.http_input import read_body
from aibrain.settings import Settings

log = logging.getLogger(__name__)

SHORT_SESSION = 86_400  # Better Auth's DB lifetime of a session made with rememberMe false.
NO_STORE = {"cache-control": "no-store", "pragma": "no-cache"}


class AuthRoutes:
    """Handlers of the auth service, sharing its database, keys and hashing pool."""

    def __init__(
        self,
        settings: Settings,
        *,
        engine: Engine,
        keys: KeyStore,
        passwords: Passwords,
        signer: TokenSigner,
        proxies: TrustedProxies,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.engine = engine
        self.keys = keys
        self.passwords = passwords
        self.signer = signer
        self.proxies = proxies
        self.clock = clock
        self.policy = OriginPolicy(settings.origin, settings.trusted_origins)
        self.minter = JwtMinter(
            keys,
            issuer=settings.issuer,
            audience=settings.audience,
            expires_in=settings.jwt_expires_in,
            clock=clock,
        )
        self.cookies = SessionCookies(signer, secure=settings.base_url.startswith("https://"))

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self.clock(), UTC)

    async def _body(self, request: Request) -> object:
        # Twice the API's body limit: a 1 MiB password must still reach the length check and get
        # Better Auth's PASSWORD_TOO_LONG rather than a 413.
        raw = await read_body(request, self.settings.max_body_bytes * 2)
        return parse_body(request.headers.get("content-type"), raw, max_depth=self.settings.max_json_depth)

    async def _mint_jwt(self, user: dict[str, Any]) -> str:
        return await self.minter.mint(user)

    def _session_response(
        self, body: dict[str, Any], session: dict[str, Any], jwt: str, remember: bool
    ) -> JSONResponse:
        signed = self.signer.sign(session["token"])
        response = JSONResponse(body)
        max_age = self.settings.session_expires_in if remember else None
        response.headers.append("set-cookie", self.cookies.session(signed, max_age))
        if not remember:
            response.headers.append("set-cookie", self.cookies.dont_remember())
        response.headers["set-auth-token"] = signed
        response.headers["set-auth-jwt"] = jwt
        response.headers["access-control-expose-headers"] = "set-auth-token, set-auth-jwt"
        return response

    def _client(self, request: Request) -> tuple[str, str]:
        return self.proxies.client_address(request), request.headers.get("user-agent", "")

    # Sign-up and sign-in

    async def sign_up(self, request: Request) -> Response:
        body = validate(await self._body(request), SIGN_UP_FIELDS, record_check=True, email_format=True)
        self.policy.check_sign_in(request.headers)
        self.policy.check_url_fields(body)
        password: str = body["password"]
        _check_password_length(password, minimum=True)
        email = body["email"].lower()

        if await asyncio.to_thread(store.email_taken, self.engine, email):
            raise _duplicate_email()
        password_hash = await self.passwords.hash(password)
        remember = body.get("rememberMe", True) is not False
        ip, user_agent = self._client(request)
        try:
            user, session = await asyncio.to_thread(
                store.create_user,
                self.engine,
                name=body["name"],
                email=email,
                image=body.get("image"),
                password_hash=password_hash,
                now=self._now(),
                session_expires_in=self.settings.session_expires_in if remember else SHORT_SESSION,
                ip=ip,
                user_agent=user_agent,
            )
        except store.DuplicateEmailError:
            raise _duplicate_email() from None
        log.info("signed up user %s", user["id"])

        jwt = await self._mint_jwt(user)
        payload = {"token": session["token"], "user": user, "session": session, "jwt": jwt}
        return self._session_response(payload, session, jwt, remember)

    async def sign_in(self, request: Request) -> Response:
        body = validate(await self._body(request), SIGN_IN_FIELDS)
        self.policy.check_sign_in(request.headers)
        self.policy.check_url_fields(body)
        if not is_email(body["email"]):
            raise ServiceError(400, "INVALID_EMAIL", "Invalid email")
        password: str = body["password"]
        _check_password_length(password, minimum=False)

        found = await asyncio.to_thread(store.find_credentials, self.engine, body["email"].lower())
        stored_hash = found[2] if found else None
        # Unknown emails and accounts without a password still pay for one verification (against a
        # dummy hash), so response time does not tell which emails have accounts.
        if not await self.passwords.verify(password, stored_hash) or found is None:
            raise ServiceError(401, "INVALID_EMAIL_OR_PASSWORD", "Invalid email or password")
        user, account_id, _ = found
        if account_id is not None and stored_hash is not None and self.passwords.needs_rehash(stored_hash):
            await self._upgrade_hash(user["id"], account_id, password)

        remember = body.get("rememberMe", True) is not False
        ip, user_agent = self._client(request)
        session = await asyncio.to_thread(
            store.create_session,
            self.engine,
            user["id"],
            now=self._now(),
            expires_in=self.settings.session_expires_in if remember else SHORT_SESSION,
            ip=ip,
            user_agent=user_agent,
        )
        jwt = await self._mint_jwt(user)
        callback = body.get("callbackURL")
        payload: dict[str, Any] = {"redirect": bool(callback), "token": session["token"]}
        if callback:
            payload["url"] = callback
        payload.update(user=user, session=session, jwt=jwt)
        response = self._session_response(payload, session, jwt, remember)
        if callback:
            response.headers["location"] = callback
        return response

    async def _upgrade_hash(self, user_id: str, account_id: str, password: str) -> None:
        new_hash = await self.passwords.hash(password)
        await asyncio.to_thread(store.replace_password, self.engine, account_id, new_hash, self._now())
        log.info("upgraded the password hash of user %s to %s", user_id, self.passwords.scheme)

    # Sessions

    async def _current_session(self, request: Request) -> tuple[dict[str, Any], dict[str, Any]] | None | bool:
        """Return (session, user); None without a well-signed token; False when the token is stale.

        For a stale token (well signed but unknown or expired) the caller clears the cookies; an
        expired session row is deleted as Better Auth does.
        """
        token = self.cookies.session_token(request)
        if token is None:
            return None
        found = await asyncio.to_thread(store.find_session, self.engine, token)
        if found is None:
            return False
        session, _user = found
        if store.db.from_iso(session["expiresAt"]) <= self._now():
            await asyncio.to_thread(store.delete_session, self.engine, token)
            return False
        return found

    async def get_session(self, request: Request) -> Response:
        found = await self._current_session(request)
        if not isinstance(found, tuple):
            response = JSONResponse(None, headers=NO_STORE)
            if found is False:
                _append_cookies(response, self.cookies.clearing())
            return response

        session, user = found
        refreshed = await self._maybe_refresh(request, session)
        jwt = await self._mint_jwt(user)
        response = JSONResponse({"session": session, "user": user}, headers=NO_STORE)
        response.headers["set-auth-jwt"] = jwt
        exposed = ["set-auth-jwt"]
        if refreshed:
            signed = self.signer.sign(session["token"])
            response.headers.append("set-cookie", self.cookies.session(signed, self.settings.session_expires_in))
            response.headers["set-auth-token"] = signed
            exposed.append("set-auth-token")
        response.headers["access-control-expose-headers"] = ", ".join(exposed)
        return response

    async def _maybe_refresh(self, request: Request, session: dict[str, Any]) -> bool:
        """Extend a session once `session_update_age` has passed since it was made or last extended."""
        if request.query_params.get("disableRefresh") == "true" or self.cookies.has_dont_remember(request):
            return False
        now = self._now()
        expires_in = self.settings.session_expires_in
        due = store.db.from_iso(session["expiresAt"]).timestamp() - expires_in + self.settings.session_update_age
        if due > now.timestamp():
            return False
        session["expiresAt"] = store.db.iso_after(now, expires_in)
        session["updatedAt"] = store.db.to_iso(now)
        await asyncio.to_thread(
            store.extend_session,
            self.engine,
            session["id"],
            expires_at=session["expiresAt"],
            updated_at=session["updatedAt"],
        )
        return True

    async def get_session_post(self, request: Request) -> Response:
        raise ServiceError(
            405,
            "METHOD_NOT_ALLOWED_DEFER_SESSION_REQUIRED",
            "POST method requires deferSessionRefresh to be enabled in session config",
            headers=NO_STORE,
        )

    async def token(self, request: Request) -> Response:
        found = await self._current_session(request)
        if not isinstance(found, tuple):
            error = ServiceError(401, "UNAUTHORIZED", "Unauthorized")
            response = error.to_response()
            if found is False:
                _append_cookies(response, self.cookies.clearing())
            return response
        return JSONResponse({"token": await self._mint_jwt(found[1])})

    async def sign_out(self, request: Request) -> Response:
        self.policy.check_post(request.headers)
        await read_body(request, self.settings.max_body_bytes)
        token = self.cookies.session_token(request)
        if token is not None:
            await asyncio.to_thread(store.delete_session, self.engine, token)
        response = JSONResponse({"success": True})
        _append_cookies(response, self.cookies.clearing())
        return response

    # Keys and liveness

    async def jwks(self, request: Request) -> Response:
        if self.keys.stale():
            await asyncio.to_thread(self.keys.load)
        return Response(
            self.keys.jwks_body(),
            media_type="application/json",
            headers={"cache-control": "public, max-age=300"},
        )

    async def ok(self, request: Request) -> Response:
        return JSONResponse({"ok": True})


def _append_cookies(response: Response, cookies: list[str]) -> None:
    for cookie in cookies:
        response.headers.append("set-cookie", cookie)


def _duplicate_email() -> ServiceError:
    return ServiceError(422, "USER_ALREADY_EXISTS_USE_ANOTHER_EMAIL", "User already exists. Use another email.")


def _check_password_length(password: str, *, minimum: bool) -> None:
    """Apply Better Auth's length rules, counted in UTF-16 units; sign-in checks only the maximum."""
    length = utf16_length(password)
    if minimum and length < MIN_PASSWORD_LENGTH:
        raise ServiceError(400, "PASSWORD_TOO_SHORT", "Password too short")
    if length > MAX_PASSWORD_LENGTH:
        raise ServiceError(400, "PASSWORD_TOO_LONG", "Password too long")
