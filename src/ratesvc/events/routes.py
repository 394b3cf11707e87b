"""HTTP routes of the events feature: accept events, read counts."""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import MediaType, Request, Response, get, post
from litestar.datastructures import State
from redis.exceptions import RedisError

from ratesvc.api.errors import error_response
from ratesvc.events.appender import BacklogFullError, EventStoreUnavailableError
from ratesvc.events.model import (
    EVENT_TYPE_PATTERN,
    BadEventError,
    encode_entry,
    is_event_type,
    parse_body,
)
from ratesvc.events.state import EventsState

_RECEIVED = b'{"status":"received"}'
_RETRY_AFTER_S = "5"


class Stats(msgspec.Struct):
    event_type: str
    count: int


@post(
    "/v1/events",
    tags=["events"],
    status_code=202,
    summary="Report one event, or a JSON array of events",
    description=(
        "Body: `{user_id, event_type, timestamp, payload?, event_id?}` or an array of them "
        "(one request, one 202). The event is in durable storage before the 202; a retry "
        "with the same `event_id` is counted once."
    ),
    responses={},
)
async def post_events(request: Request[Any, Any, Any], state: State) -> Response[Any]:
    # The body is decoded here rather than by Litestar so one reused msgspec decoder
    # does it, and the error names the field in the app's error shape.
    body = await request.body()
    try:
        events = parse_body(body)
    except BadEventError as exc:
        return error_response(400, exc.detail, field=exc.field)
    events_state: EventsState = state.services.extras["events"]
    try:
        await events_state.appender.append(encode_entry(events))
    except BacklogFullError:
        return error_response(
            503,
            "event backlog is full; retry later",
            headers={"Retry-After": _RETRY_AFTER_S},
        )
    except EventStoreUnavailableError:
        return error_response(
            503, "event store unavailable; retry later", headers={"Retry-After": _RETRY_AFTER_S}
        )
    if body.lstrip()[:1] == b"{":  # the single-event form keeps its historical answer
        return Response(_RECEIVED, status_code=202, media_type=MediaType.JSON)
    return Response({"status": "received", "count": len(events)}, status_code=202)


@get(
    "/v1/stats/{event_type:str}",
    tags=["events"],
    summary="How many events of this type were stored (0 for an unknown type)",
    responses={},
)
async def get_stats(event_type: str, state: State) -> Response[Any]:
    if not is_event_type(event_type):
        return error_response(
            400, f"event_type must match {EVENT_TYPE_PATTERN}", field="event_type"
        )
    events_state: EventsState = state.services.extras["events"]
    try:
        count = await events_state.counters.get(event_type)
    except (RedisError, OSError):
        return error_response(503, "counts unavailable; retry later", headers={"Retry-After": "1"})
    return Response(Stats(event_type=event_type, count=count))


ROUTES = [post_events, get_stats]
