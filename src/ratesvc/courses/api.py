"""``GET /v1/courses`` and ``GET /v1/courses/stream``.

The common answers (all directions; by exchanger) are pre-rendered by the
drainer, and each process keeps a copy at most 50 ms old (``local.py``), so
such a request does no I/O and no encoding.  Filtered shapes, and answers
whose pre-rendered bytes have gone past their validity, are rendered here
from the latest quotes in Redis.  Handlers never call an exchange.

The hottest request, ``GET /v1/courses`` without a query string, is answered
by ``DefaultAnswerMiddleware``: raw ASGI on this route only, before Litestar
builds a request, parses parameters and encodes a response (about 3x the
requests/s of the handler).  The handler stays the documented route and
answers everything else: filters, and the rare default request whose copy is
past its ``valid_until``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any

from litestar import MediaType, Request, Response, get
from litestar.datastructures import State
from litestar.enums import ScopeType
from litestar.exceptions import ClientException
from litestar.params import Parameter
from litestar.response import ServerSentEvent, ServerSentEventMessage
from litestar.types import (
    ASGIApp,
    HTTPResponseBodyEvent,
    HTTPResponseStartEvent,
    Receive,
    Scope,
    Send,
)
from redis.exceptions import RedisError

from ratesvc.courses.directions import BY_NAME, DIRECTIONS, SOURCES
from ratesvc.courses.local import CACHE_CONTROL as _CACHE_CONTROL_BYTES
from ratesvc.courses.local import Answer
from ratesvc.courses.rates import compute_rates
from ratesvc.courses.render import ALL_DIRECTIONS, Courses, render
from ratesvc.courses.sinks import load_quotes

if TYPE_CHECKING:
    from ratesvc.courses.feature import CoursesState

CACHE_CONTROL = _CACHE_CONTROL_BYTES.decode()
DEFAULT_SHAPE = "default"
KEEPALIVE_S = 15.0


def _parse_directions(raw: list[str] | None) -> tuple[str, ...]:
    if not raw:
        return ALL_DIRECTIONS
    wanted = [part.strip().upper() for item in raw for part in item.split(",") if part.strip()]
    unknown = sorted({d for d in wanted if d not in BY_NAME})
    if unknown:
        raise ClientException(
            detail=f"unknown direction: {', '.join(unknown)}",
            extra={"valid": list(ALL_DIRECTIONS)},
        )
    # Keep the table's order and drop repeats, so equal sets give equal bodies and ETags.
    chosen = set(wanted)
    return tuple(d.name for d in DIRECTIONS if d.name in chosen)


def _parse_exchanger(raw: str | None) -> str | None:
    if raw is None or raw == "":
        return None
    exchanger = raw.strip().lower()
    if exchanger not in SOURCES:
        raise ClientException(detail=f"unknown exchanger: {raw}", extra={"valid": list(SOURCES)})
    return exchanger


def _respond(request: Request[Any, Any, Any], status: int, etag: str, body: bytes) -> Response[Any]:
    if status != 200:
        return Response(
            body,
            status_code=status,
            media_type=MediaType.JSON,
            headers={"Retry-After": "1", "Cache-Control": "no-store"},
        )
    headers = {"ETag": etag, "Cache-Control": CACHE_CONTROL}
    if_none_match = request.headers.get("if-none-match")
    if if_none_match and (if_none_match.strip() == "*" or etag in if_none_match):
        return Response(b"", status_code=304, headers=headers)
    return Response(body, media_type=MediaType.JSON, headers=headers)


class DefaultAnswerMiddleware:
    """``GET /v1/courses`` with no query string: the local copy of the default answer, sent raw.

    Same answer as the handler's, byte for byte and header for header (ETag,
    Cache-Control, 304 on a matching If-None-Match, 503 with Retry-After);
    anything else, and any trouble reading Redis, goes on to the handler.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP or scope["query_string"]:
            await self.app(scope, receive, send)
            return
        answers = scope["app"].state.services.extras["courses"].answers
        usable, answer = answers.fresh(DEFAULT_SHAPE)
        if not usable:
            try:
                answer = await answers.get(DEFAULT_SHAPE)
            except (RedisError, OSError):
                answer = None
        if answer is None or time.time() * 1000 > answer.valid_until_ms:
            await self.app(scope, receive, send)
            return
        await _send_answer(scope, send, answer)


async def _send_answer(scope: Scope, send: Send, answer: Answer) -> None:
    status, headers, body = answer.status, answer.headers, answer.body
    if status == 200:
        for name, value in scope["headers"]:
            if name == b"if-none-match":
                if answer.matches(value):
                    status, headers, body = 304, answer.not_modified_headers, b""
                break
    # Copies: a middleware further out may add headers to the list it is given.
    start: HTTPResponseStartEvent = {
        "type": "http.response.start",
        "status": status,
        "headers": list(headers),
    }
    end: HTTPResponseBodyEvent = {"type": "http.response.body", "body": body, "more_body": False}
    await send(start)
    await send(end)


@get(
    "/v1/courses",
    tags=["courses"],
    summary="Current rates of BTC, ETH and USDT in USD and RUB",
    description=(
        "Without `exchanger`, each direction comes from the best fresh source (binance, then "
        "coingecko); directions with no fresh value are listed in `missing` (or the answer is "
        "503, see RATESVC_PARTIAL_COURSES). With `exchanger`, that source's last values are "
        "given, each row marked `stale` when older than the freshness limit. Values are case-"
        "insensitive. Strong ETag; send If-None-Match for a 304."
    ),
    responses={},
    middleware=[DefaultAnswerMiddleware],
)
async def courses(
    request: Request[Any, Any, Any],
    state: State,
    exchanger: Annotated[
        str | None, Parameter(description="binance or coingecko: answer from that source only")
    ] = None,
    direction: Annotated[
        list[str] | None,
        Parameter(description="One or more directions, repeated or comma-separated"),
    ] = None,
) -> Response[Courses]:
    chosen_exchanger = _parse_exchanger(exchanger)
    directions = _parse_directions(direction)
    services = state.services
    courses_state: CoursesState = services.extras["courses"]
    if directions == ALL_DIRECTIONS:
        answer = await courses_state.answers.get(chosen_exchanger or DEFAULT_SHAPE)
        if answer is not None and time.time() * 1000 <= answer.valid_until_ms:
            return _respond(request, answer.status, answer.etag, answer.body)
    quotes = await load_quotes(services.redis)
    rendered = render(
        compute_rates(quotes, courses_state.freshness, (BY_NAME[d] for d in directions)),
        datetime.now(UTC),
        directions=directions,
        exchanger=chosen_exchanger,
        partial=courses_state.partial,
    )
    return _respond(request, rendered.status, rendered.etag, rendered.body)


@get(
    "/v1/courses/stream",
    tags=["courses"],
    summary="Server-Sent Events: the default /v1/courses answer, pushed on every change",
)
async def courses_stream(state: State) -> ServerSentEvent:
    services = state.services
    courses_state: CoursesState = services.extras["courses"]
    broadcaster = courses_state.broadcaster

    async def events() -> AsyncIterator[ServerSentEventMessage]:
        queue = broadcaster.subscribe()
        try:
            quotes = await load_quotes(services.redis)
            first = render(
                compute_rates(quotes, courses_state.freshness),
                datetime.now(UTC),
                partial=courses_state.partial,
            )
            yield ServerSentEventMessage(data=first.body.decode(), event="courses")
            while True:
                try:
                    async with asyncio.timeout(KEEPALIVE_S):
                        body = await queue.get()
                except TimeoutError:
                    yield ServerSentEventMessage(comment="keepalive")
                    continue
                yield ServerSentEventMessage(data=body.decode(), event="courses")
        finally:
            broadcaster.unsubscribe(queue)

    return ServerSentEvent(events(), headers={"Cache-Control": "no-store"})


ROUTES = [courses, courses_stream]
