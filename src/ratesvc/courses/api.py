"""``GET /v1/courses`` and ``GET /v1/courses/stream``.

The common answers (all directions; by exchanger) are pre-rendered by the
drainer, so such a request is one Redis GET and no encoding.  Filtered
shapes, and answers whose pre-rendered bytes have gone past their validity,
are rendered here from the latest quotes in Redis.  Handlers never call an
exchange.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any

from litestar import MediaType, Request, Response, get
from litestar.datastructures import State
from litestar.exceptions import ClientException
from litestar.params import Parameter
from litestar.response import ServerSentEvent, ServerSentEventMessage

from ratesvc.courses import keys
from ratesvc.courses.directions import BY_NAME, DIRECTIONS, SOURCES
from ratesvc.courses.rates import compute_rates
from ratesvc.courses.render import ALL_DIRECTIONS, Courses, Rendered, render
from ratesvc.courses.sinks import load_quotes

if TYPE_CHECKING:
    from ratesvc.courses.feature import CoursesState

CACHE_CONTROL = "public, max-age=1, must-revalidate"
"""Values change every second: caches may keep an answer one second, then revalidate (ETag)."""
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
        raw = await services.redis.get(keys.body_key(chosen_exchanger or "default"))
        if raw is not None:
            valid_ms, status, etag, body = Rendered.from_redis(raw)
            if time.time() * 1000 <= valid_ms:
                return _respond(request, status, etag, body)
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
