"""HTTP routes of the events feature: accept events, read counts."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import msgspec
from litestar import Response, asgi, get
from litestar.di import NamedDependency
from litestar.types import Receive, Scope, Send

from ratesvc.api.errors import error_code, error_response
from ratesvc.api.raw import json_reply, send_reply
from ratesvc.events import store
from ratesvc.events.appender import BacklogFullError, EventStoreUnavailableError
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


class Stats(msgspec.Struct):
    event_type: str
    count: int


_MAX_BODY_BYTES = 1024 * 1024
"""Same bound as the app's request_max_body_size, enforced here because this route reads raw."""
_RETRY_LATER = [(b"retry-after", b"5")]
_json = msgspec.json.Encoder()


@asgi("/v1/events", copy_scope=False)  # nothing below mutates the scope
async def post_events(scope: Scope, receive: Receive, send: Send) -> None:
    """POST one event or a JSON array of events; 202 once they are durable in Redis.

    A raw ASGI route: ingestion is the hottest write path, and Litestar's request and
    response objects cost as much as the work itself (about 3,700 against 6,200
    requests/s on one core).  Answers keep the app's error shape.  The price: Litestar
    does not put this route in the OpenAPI document.
    """
    if scope.get("method") != "POST":
        await _send_error(send, 405, "use POST", [(b"allow", b"POST")])
        return
    body = await _read_body(receive)
    if body is None:
        await _send_error(send, 413, f"request body over {_MAX_BODY_BYTES} bytes")
        return
    try:
        events = parse_body(body)
    except BadEventError as exc:
        await _send_error(send, 400, exc.detail, field=exc.field)
        return
    events_state = state_of(scope["app"], EventsState)
    try:
        await events_state.appender.append(encode_entry(events))
    except BacklogFullError:
        await _send_error(send, 503, "event backlog is full; retry later", _RETRY_LATER)
        return
    except EventStoreUnavailableError:
        await _send_error(send, 503, "event store unavailable; retry later", _RETRY_LATER)
        return
    if body.lstrip()[:1] == b"{":  # the single-event form keeps its historical answer
        await _send_raw(send, 202, _RECEIVED)
    else:
        await _send_raw(send, 202, _json.encode({"status": "received", "count": len(events)}))


async def _read_body(receive: Receive) -> bytes | None:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return b""
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > _MAX_BODY_BYTES:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks) if len(chunks) != 1 else chunks[0]


async def _send_error(
    send: Send,
    status: int,
    detail: str,
    headers: Sequence[tuple[bytes, bytes]] = (),
    **extra: Any,
) -> None:
    body = {"error": error_code(status), "detail": detail, **extra}
    await _send_raw(send, status, _json.encode(body), headers)


async def _send_raw(
    send: Send, status: int, body: bytes, headers: Sequence[tuple[bytes, bytes]] = ()
) -> None:
    await send_reply(send, json_reply(status, body, *headers))


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


ROUTES = [post_events, get_stats]
