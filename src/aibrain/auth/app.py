"""The auth service as an ASGI app: `create_app(settings)` for tests, `app_from_env()` for servers."""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from sqlalchemy.exc import OperationalError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from aibrain.auth.db import create_database_engine
from aibrain.auth.keys import KeyStore
from aibrain.auth.migrations import migrate
from aibrain.auth.openapi import openapi_handler
from aibrain.auth.passwords import Passwords
from aibrain.auth.ratelimit import RateLimiter, TrustedProxies
from aibrain.auth.routes import AuthRoutes
from aibrain.auth.secret import resolve_secret
from aibrain.auth.tokens import TokenSigner
from aibrain.errors import ServiceError, error_response
from aibrain.logs import configure_logging, shorten
from aibrain.settings import Settings, load_settings

log = logging.getLogger(__name__)

BASE_PATH = "/api/auth"
Handler = Callable[[Request], Awaitable[Response]]
_SLASHES = re.compile(r"/{2,}")


def normalize_path(path: str) -> str:
    """Collapse repeated slashes and drop a trailing one, so `//sign-in/email/` is `/sign-in/email`."""
    path = _SLASHES.sub("/", path)
    return path.rstrip("/") or "/"


def _route_table(routes: AuthRoutes) -> dict[tuple[str, str], Handler]:
    return {
        ("POST", "/sign-up/email"): routes.sign_up,
        ("POST", "/sign-in/email"): routes.sign_in,
        ("POST", "/sign-out"): routes.sign_out,
        ("GET", "/get-session"): routes.get_session,
        ("POST", "/get-session"): routes.get_session_post,
        ("GET", "/token"): routes.token,
        ("GET", "/jwks"): routes.jwks,
        ("GET", "/ok"): routes.ok,
        ("GET", "/openapi.json"): openapi_handler(routes.settings),
    }


def create_app(settings: Settings, *, clock: Callable[[], float] = time.time) -> Starlette:
    """Build the auth service: migrate the database, load or create the signing key, wire routes."""
    secret = resolve_secret(settings)
    engine = create_database_engine(settings.auth_database_url)
    migrate(engine)
    keys = KeyStore(
        engine,
        secret,
        alg=settings.jwt_algorithm,
        rotation_interval=settings.key_rotation_interval,
        grace_period=settings.key_grace_period,
        clock=clock,
    )
    keys.load()
    keys.check_private_keys()
    if keys.current_key() is None:
        keys.create_key_sync()
    passwords = Passwords(
        settings.password_hasher,
        memory_kib=settings.argon2_memory_kib,
        iterations=settings.argon2_iterations,
        threads=settings.hash_threads,
    )
    proxies = TrustedProxies(settings.trusted_proxies)
    routes = AuthRoutes(
        settings, engine=engine, keys=keys, passwords=passwords, signer=TokenSigner(secret), proxies=proxies, clock=clock
    )
    table = _route_table(routes)
    limiter = None
    if settings.rate_limit_enabled:
        limiter = RateLimiter(
            window=settings.rate_limit_window,
            max_requests=settings.rate_limit_max,
            auth_max_requests=settings.rate_limit_auth_max,
            storage_uri=settings.rate_limit_storage,
        )

    async def dispatch(request: Request) -> Response:
        path = normalize_path(request.url.path)
        handler = table.get((request.method, path[len(BASE_PATH) :])) if path.startswith(BASE_PATH + "/") else None
        if handler is None:
            return error_response(404, "NOT_FOUND", f"No route {request.method} {shorten(path, 80)}; see the README for the routes.")
        try:
            if limiter is not None:
                await limiter.check(proxies.client_address(request), path[len(BASE_PATH) :])
            return await handler(request)
        except ServiceError as error:
            return error.to_response()
        except OperationalError as error:
            log.error("auth database error on %s %s: %s", request.method, path, error.orig)
            return error_response(503, "DATABASE_UNAVAILABLE", "The auth database is unavailable (locked, full or read-only); try again shortly.")
        except Exception:
            log.exception("unexpected error on %s %s", request.method, path)
            return error_response(500, "INTERNAL_ERROR", "Internal error; the server log has the details.")

    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        log.info("auth service started: base URL %s, signing alg %s, database %s", settings.base_url, settings.jwt_algorithm, engine.url.render_as_string(hide_password=True))
        try:
            yield
        finally:
            passwords.close()
            await asyncio.to_thread(engine.dispose)
            log.info("auth service stopped")

    methods = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
    return Starlette(routes=[Route("/{path:path}", dispatch, methods=methods)], lifespan=lifespan)


def app_from_env() -> Starlette:
    """Build the app from the environment; Granian imports this as a factory."""
    settings = load_settings()
    configure_logging(settings.log_level)
    return create_app(settings)
