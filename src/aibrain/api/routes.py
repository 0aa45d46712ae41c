"""The HTTP endpoints of the events API."""

from __future__ import annotations

import logging

import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from aibrain.api.auth import Authenticator
from aibrain.api.bodies import check_event_type, check_json_media_type, decode_event, read_body
from aibrain.api.cursor import CursorError, decode_cursor, encode_cursor
from aibrain.api.jwks import JwksCache
from aibrain.api.openapi import openapi_document
from aibrain.api.quotas import WriteQuota
from aibrain.api.storage import EventRow, StorageError
from aibrain.api.stores import StorePool
from aibrain.errors import JSONResponse, ServiceError, error_response
from aibrain.settings import Settings

logger = logging.getLogger(__name__)

_encoder = msgspec.json.Encoder()


class EventOut(msgspec.Struct):
    id: int
    type: str
    data: msgspec.Raw
    created_at: str


class EventPage(msgspec.Struct):
    events: list[EventOut]
    next_cursor: str | None


def _event_out(row: EventRow) -> EventOut:
    return EventOut(id=row.id, type=row.type, data=msgspec.Raw(row.data.encode()), created_at=row.created_at)


def _storage_failure(exc: StorageError, action: str) -> ServiceError:
    logger.error("event store %s could not %s: %s", exc.path, action, exc.message)
    if exc.full:
        return ServiceError(507, "STORAGE_FULL", "the disk of the event store is full; no event was stored")
    if exc.read_only:
        return ServiceError(
            503,
            "STORAGE_UNAVAILABLE",
            f"the event store is read-only, so it cannot {action}; the operator must make the data folder writable",
        )
    return ServiceError(503, "STORAGE_UNAVAILABLE", f"the event store cannot {action} right now; retry later")


def _single_param(request: Request, name: str) -> str | None:
    values = request.query_params.getlist(name)
    if len(values) > 1:
        raise ServiceError(400, "INVALID_QUERY", f"give the {name} parameter at most once")
    return values[0] if values else None


class EventsApi:
    """Endpoints bound to the services they use."""

    def __init__(
        self, settings: Settings, authenticator: Authenticator, jwks: JwksCache, stores: StorePool, quota: WriteQuota
    ) -> None:
        self._settings = settings
        self._quota = quota
        self._auth = authenticator
        self._jwks = jwks
        self._stores = stores
        self._openapi = _encoder.encode(openapi_document(settings))

    def routes(self) -> list[Route]:
        return [
            Route("/health", self.health, methods=["GET"]),
            Route("/ready", self.ready, methods=["GET"]),
            Route("/me", self.me, methods=["GET"]),
            Route("/events", self.events, methods=["GET", "POST"]),
            Route("/openapi.json", self.openapi, methods=["GET"]),
        ]

    async def health(self, request: Request) -> Response:
        body = {
            "status": "ok" if self._jwks.has_keys else "degraded",
            "jwks": self._jwks.stats(),
            "stores": {"open": self._stores.open_count, "max": self._stores.max_open},
        }
        return JSONResponse(body)

    async def ready(self, request: Request) -> Response:
        if not self._jwks.has_keys:
            return error_response(503, "AUTH_UNAVAILABLE", "no signing keys fetched from the auth server yet")
        return JSONResponse({"status": "ready"})

    async def openapi(self, request: Request) -> Response:
        return Response(self._openapi, media_type="application/json")

    async def me(self, request: Request) -> Response:
        identity = await self._auth.identify(request)
        body = {
            "id": identity.sub,
            "email": identity.email,
            "name": identity.name,
            "email_verified": identity.email_verified,
            "image": identity.image,
        }
        return JSONResponse(body)

    async def events(self, request: Request) -> Response:
        # One route for both methods, so that other methods get a 405 whose Allow lists both.
        if request.method == "POST":
            return await self.create_event(request)
        return await self.list_events(request)

    async def create_event(self, request: Request) -> Response:
        identity = await self._auth.identify(request)
        check_json_media_type(request)
        settings = self._settings
        body = await read_body(request, settings.max_body_bytes)
        event = decode_event(body, max_depth=settings.max_json_depth, max_type_length=settings.max_type_length)
        data = _encoder.encode(event.data)
        if self._quota.enabled:
            await self._quota.charge(identity.sub, len(data))

        try:
            async with self._stores.acquire(identity.sub) as store:
                row = await self._stores.run(store.append, event.type, data.decode())
        except StorageError as exc:
            raise _storage_failure(exc, "store events") from None
        out = EventOut(id=row.id, type=row.type, data=msgspec.Raw(data), created_at=row.created_at)
        return JSONResponse(out, status_code=201)

    async def list_events(self, request: Request) -> Response:
        identity = await self._auth.identify(request)
        event_type, limit, after = self._page_query(request)

        if not self._stores.is_open(identity.sub) and not self._stores.path_for(identity.sub).exists():
            return JSONResponse(EventPage(events=[], next_cursor=None))
        try:
            async with self._stores.acquire(identity.sub) as store:
                # One row more than the page shows whether another page follows.
                rows = await self._stores.read_page(store, event_type, limit + 1, after)
        except StorageError as exc:
            raise _storage_failure(exc, "read events") from None

        next_cursor = encode_cursor(rows[limit - 1].created_at, rows[limit - 1].id) if len(rows) > limit else None
        return JSONResponse(EventPage(events=[_event_out(row) for row in rows[:limit]], next_cursor=next_cursor))

    def _page_query(self, request: Request) -> tuple[str | None, int, tuple[str, int] | None]:
        event_type = _single_param(request, "type")
        if event_type is not None:
            if not event_type:
                raise ServiceError(400, "INVALID_QUERY", "type must not be empty; omit it to list every type")
            try:
                check_event_type(event_type, self._settings.max_type_length)
            except ServiceError as exc:
                raise ServiceError(400, "INVALID_QUERY", exc.message) from None

        max_page = self._settings.max_page_size
        limit = min(self._settings.default_page_size, max_page)
        raw_limit = _single_param(request, "limit")
        if raw_limit is not None:
            valid = raw_limit.isascii() and raw_limit.isdigit() and len(raw_limit) <= 9
            if not valid or not 1 <= int(raw_limit) <= max_page:
                raise ServiceError(400, "INVALID_QUERY", f"limit must be an integer from 1 to {max_page}")
            limit = int(raw_limit)

        raw_cursor = _single_param(request, "cursor")
        try:
            after = decode_cursor(raw_cursor) if raw_cursor is not None else None
        except CursorError as exc:
            raise ServiceError(400, "INVALID_CURSOR", str(exc)) from None
        return event_type, limit, after
