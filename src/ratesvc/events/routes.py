"""HTTP routes of the events feature: accept events, read counts.

``POST /v1/events`` has one answer function, ``events_answer``: the raw ASGI
scope and ``receive`` in, ``Reply`` (status, headers, body) out.  The route's
raw ASGI layer sends that reply before Litestar builds a request or a response
(ingestion is the hottest write path, and those objects cost about as much as
the work itself); the ``@post`` handler is the documented form of the same
route, in the OpenAPI document, and returns the same reply through Litestar.
``routes(raw=False)`` builds the routes without the raw layer, which is how a
test proves the two agree byte for byte.  The router answers a wrong method
(405) and ``RequestLimitsMiddleware`` an announced oversized body (413) before
either form runs.
"""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Request, Response, get, post
from litestar.di import NamedDependency
from litestar.handlers import HTTPRouteHandler
from litestar.response.base import ASGIResponse
from litestar.types import Receive, Scope

from ratesvc.api.errors import error_response
from ratesvc.api.limits import MAX_BODY_BYTES
from ratesvc.api.raw import (
    Reply,
    answered_with_body,
    json_error,
    json_reply,
    read_body,
    to_asgi_response,
)
from ratesvc.events import store
from ratesvc.events.appender import BacklogFullError, EventStoreUnavailableError
from ratesvc.events.docs import POST_EVENTS_DOC
from ratesvc.events.model import (
    EVENT_TYPE_PATTERN,
    BadEventError,
    encode_entry,
    is_event_type,
    parse_body,
)
from ratesvc.events.state import EventsState
from ratesvc.plugin import state_of
from ratesvc.retry import STORE_ERRORS

_RECEIVED = b'{"status":"received"}'
_RETRY_LATER = (b"retry-after", b"5")
_json = msgspec.json.Encoder()


class Stats(msgspec.Struct):
    event_type: str
    count: int


async def events_answer(scope: Scope, receive: Receive) -> Reply:
    """The answer of ``POST /v1/events`` to this request: 202 once its events are in Redis."""
    body = await read_body(receive, MAX_BODY_BYTES)
    if body is None:  # chunked past the limit (an announced length is refused earlier)
        return json_error(413, f"request body over {MAX_BODY_BYTES} bytes")
    try:
        events = parse_body(body)
    except BadEventError as exc:
        return json_error(400, exc.detail, field=exc.field)
    appender = state_of(scope["app"], EventsState).appender
    try:
        await appender.append(encode_entry(events))
    except BacklogFullError:
        return json_error(503, "event backlog is full; retry later", _RETRY_LATER)
    except EventStoreUnavailableError:
        return json_error(503, "event store unavailable; retry later", _RETRY_LATER)
    if body.lstrip()[:1] == b"{":  # the single-event form keeps its historical answer
        return json_reply(202, _RECEIVED)
    return json_reply(202, _json.encode({"status": "received", "count": len(events)}))


def _post_route(*, raw: bool) -> HTTPRouteHandler:
    async def post_events(request: Request[Any, Any, Any]) -> ASGIResponse:
        return to_asgi_response(await events_answer(request.scope, request.receive))

    middleware = [answered_with_body(events_answer)] if raw else None
    return post("/v1/events", middleware=middleware, **POST_EVENTS_DOC)(post_events)


@get(
    "/v1/stats/{event_type:str}",
    tags=["events"],
    summary="How many events of this type were stored (0 for an unknown type)",
    responses={},
)
async def get_stats(event_type: str, events_state: NamedDependency[EventsState]) -> Response[Any]:
    if not is_event_type(event_type):
        return error_response(
            400, f"event_type must match {EVENT_TYPE_PATTERN}", field="event_type"
        )
    try:
        count = await events_state.counters.get(event_type)
        if count is None:  # Redis lost the counters (being rebuilt): PostgreSQL has the truth
            count = await store.total(events_state.db, event_type)
    except STORE_ERRORS:
        return error_response(503, "counts unavailable; retry later", headers={"Retry-After": "1"})
    return Response(Stats(event_type=event_type, count=count))


def routes(*, raw: bool = True) -> list[HTTPRouteHandler]:
    """The feature's routes; ``raw=False`` leaves out the raw ASGI layer (for the test that
    compares both forms of ``POST /v1/events``)."""
    return [_post_route(raw=raw), get_stats]
