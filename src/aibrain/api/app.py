"""The events API application: `create_app(settings)` for code and tests, `app_from_env` for servers.

Run it with any ASGI server, for example `granian --interface asgi --factory aibrain.api.app:app_from_env`.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable

import httpx
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from aibrain.api.auth import Authenticator
from aibrain.api.jwks import JwksCache
from aibrain.api.quotas import WriteQuota
from aibrain.api.routes import EventsApi
from aibrain.api.stores import StorePool
from aibrain.api.tokens import TokenVerifier
from aibrain.errors import ServiceError, error_response
from aibrain.logs import configure_logging
from aibrain.settings import Settings, load_settings

logger = logging.getLogger(__name__)

_HTTP_CODES = {404: "NOT_FOUND", 405: "METHOD_NOT_ALLOWED"}


async def _service_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ServiceError)
    return exc.to_response()


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    code = _HTTP_CODES.get(exc.status_code, "INVALID_REQUEST")
    message = f"{request.method} {request.url.path}: {exc.detail}"
    return error_response(exc.status_code, code, message, exc.headers)


async def _internal_error(request: Request, exc: Exception) -> Response:
    logger.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return error_response(500, "INTERNAL_ERROR", "internal error; the server log has the details")


def create_app(
    settings: Settings,
    *,
    clock: Callable[[], float] = time.time,
    transport: httpx.AsyncBaseTransport | None = None,
) -> Starlette:
    """Build the events API. Keys are fetched and stores opened only while the app runs (lifespan)."""
    client = httpx.AsyncClient(transport=transport, timeout=settings.jwks_fetch_timeout, follow_redirects=False)
    jwks = JwksCache(
        settings.jwks_url,
        client,
        refresh_interval=settings.jwks_refresh_interval,
        refetch_cooldown=settings.jwks_refetch_cooldown,
        fetch_timeout=settings.jwks_fetch_timeout,
        clock=clock,
    )
    verifier = TokenVerifier(
        jwks,
        issuer=settings.issuer,
        audience=settings.audience,
        leeway=settings.jwt_leeway,
        cache_size=settings.token_cache_size,
        clock=clock,
    )
    stores = StorePool(
        settings.users_dir,
        max_open=settings.store_cache_size,
        synchronous=settings.sqlite_synchronous,
        busy_timeout_ms=settings.sqlite_busy_timeout_ms,
        clock=clock,
    )
    authenticator = Authenticator(verifier, max_token_bytes=settings.max_token_bytes, clock=clock)
    quota = WriteQuota(
        events_per_minute=settings.user_events_per_minute,
        bytes_per_day=settings.user_bytes_per_day,
        storage_uri=settings.quota_storage,
    )
    api = EventsApi(settings, authenticator, jwks, stores, quota)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await jwks.start()
        logger.info(
            "events API started: JWKS %s (%d keys), issuer %s, users in %s",
            settings.jwks_url,
            jwks.stats().keys,
            settings.issuer,
            settings.users_dir,
        )
        try:
            yield
        finally:
            await jwks.close()
            await client.aclose()
            open_stores = stores.open_count
            await stores.close()
            logger.info("events API stopped: closed %d event stores", open_stores)

    app = Starlette(
        routes=api.routes(),
        exception_handlers={
            ServiceError: _service_error,
            HTTPException: _http_error,
            Exception: _internal_error,
        },
        lifespan=lifespan,
    )
    app.state.jwks = jwks
    app.state.verifier = verifier
    app.state.stores = stores
    return app


def app_from_env() -> Starlette:
    """Build the app from the environment and `.env`. ASGI servers call this as a factory."""
    settings = load_settings()
    configure_logging(settings.log_level)
    return create_app(settings)
