"""``GET /v1/stocks/aggs/...`` and Polygon's own path, ``GET /v2/aggs/ticker/...``.

Both answer in Polygon's shape so Polygon's clients work unchanged with their
base URL pointed here.  A client's ``Authorization`` header or ``apiKey`` is
never read: upstream calls carry the service's key only.  Every answer has an
``X-Cache`` header; a stale one also ``Warning: 110``.  ``next_url`` points
back here, the original path plus ``cursor`` (the next bar's time in ms) in
the query string, because Polygon's clients keep only the path and query.
"""

from __future__ import annotations

import uuid
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode

import msgspec
from litestar import MediaType, Request, Response, get
from litestar.datastructures import State
from litestar.enums import ScopeType
from litestar.types import (
    ASGIApp,
    Receive,
    Scope,
    Send,
)
from redis.exceptions import RedisError

from ratesvc.api.errors import error_response
from ratesvc.api.raw import json_reply, send_reply
from ratesvc.log import get_logger
from ratesvc.stocks.errors import UpstreamError
from ratesvc.stocks.query import AggsQuery, QueryError, parse_aggs_query
from ratesvc.stocks.service import Page, StockBars

log = get_logger("stocks.http")

EXTRAS_KEY = "stocks"
STALE_WARNING = '110 - "Response is Stale"'
_RANGE = "{ticker:str}/range/{multiplier:str}/{timespan:str}/{from_:str}/{to:str}"
V1_PREFIX = "/v1/stocks/aggs/"
POLYGON_PREFIX = "/v2/aggs/ticker/"

_encode = msgspec.json.Encoder().encode


def _with_cursor(query: AggsQuery, cursor: str | None) -> AggsQuery:
    """Narrow the range to the page a ``next_url`` cursor points at."""
    if cursor is None:
        return query
    if not cursor.isdigit() or len(cursor) > 15:
        raise QueryError(f"`cursor` {cursor!r} is not one this service handed out")
    position = int(cursor)
    if query.sort == "asc":
        return msgspec.structs.replace(query, from_ms=max(query.from_ms, position))
    return msgspec.structs.replace(query, to_ms=min(query.to_ms, position))


def _next_url(request: Request[Any, Any, Any], query: AggsQuery, position: int) -> str:
    series = query.series
    prefix = POLYGON_PREFIX if request.url.path.startswith(POLYGON_PREFIX) else V1_PREFIX
    from_, to = request.path_params["from_"], request.path_params["to"]
    path = (
        f"{prefix}{quote(series.ticker, safe=':.-_')}/range/{series.multiplier}/"
        f"{series.timespan}/{from_}/{to}"
    )
    params = {
        "adjusted": "true" if series.adjusted else "false",
        "sort": query.sort,
        "limit": str(query.limit),
        "cursor": str(position),
    }
    return f"{str(request.base_url).rstrip('/')}{path}?{urlencode(params)}"


def render_body(query: AggsQuery, page: Page, request_id: str, next_url: str | None) -> bytes:
    """Polygon's answer, field by field in Polygon's order, around the spliced bars.

    Equal to encoding ``AggsResponse``, without decoding and re-encoding the bars.
    """
    count = str(page.count).encode()
    parts = [
        b'{"ticker":',
        _encode(query.series.ticker),
        b',"queryCount":',
        count,
        b',"resultsCount":',
        count,
        b',"adjusted":',
        b"true" if query.series.adjusted else b"false",
    ]
    if page.count:
        parts += [b',"results":[', b",".join(page.fragments), b"]"]
    parts += [
        b',"status":',
        _encode(page.status),
        b',"request_id":',
        _encode(request_id),
        b',"count":',
        count,
    ]
    if next_url is not None:
        parts += [b',"next_url":', _encode(next_url)]
    parts.append(b"}")
    return b"".join(parts)


def _first_values(query_string: bytes) -> dict[str, str]:
    """The query string as ``request.query_params.get`` reads it: the first value of each name."""
    params: dict[str, str] = {}
    for name, value in parse_qsl(query_string.decode("latin-1"), keep_blank_values=True):
        params.setdefault(name, value)
    return params


class RawAggregates:
    """The aggregates route without Litestar's request and response objects.

    Same answers as ``aggregates`` below (which stays the documented handler):
    parsing, cache and rendering are shared; only the framework's per-request
    objects are skipped, about a fifth of the CPU of a cache hit.  A bad query
    goes on to the handler, which answers it; a paged answer builds a
    ``Request`` for its ``next_url``, as the handler does.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await self.app(scope, receive, send)
            return
        path = scope["path_params"]
        params = _first_values(scope["query_string"])
        try:
            query = parse_aggs_query(
                path["ticker"], path["multiplier"], path["timespan"], path["from_"], path["to"],
                params=params,
            )  # fmt: skip
            query = _with_cursor(query, params.get("cursor"))
        except QueryError:
            await self.app(scope, receive, send)
            return
        bars: StockBars = scope["app"].state.services.extras[EXTRAS_KEY]
        try:
            page = await bars.answer(query)
        except (UpstreamError, RedisError) as exc:
            response = failure_response(exc)
            request: Request[Any, Any, Any] = Request(scope, receive)
            await response.to_asgi_response(None, request)(scope, receive, send)
            return
        next_url = None
        if page.next_from_ms is not None:
            next_url = _next_url(Request(scope, receive), query, page.next_from_ms)
        body = render_body(query, page, uuid.uuid4().hex, next_url)
        extra = [(b"x-cache", page.cache.encode())]
        if page.cache == "STALE":
            extra.append((b"warning", STALE_WARNING.encode()))
        await send_reply(send, json_reply(200, body, *extra))


def failure_response(exc: UpstreamError | RedisError) -> Response[Any]:
    if isinstance(exc, UpstreamError):
        failure = exc.failure
        headers = {"X-Cache": "MISS", **failure.headers()}
        return error_response(
            failure.status, failure.detail, headers=headers, upstream=failure.kind
        )
    log.warning("stocks_cache_unavailable", error=type(exc).__name__)
    return error_response(503, "the bar cache is unavailable; retry later")


def _render(request: Request[Any, Any, Any], query: AggsQuery, page: Page) -> Response[bytes]:
    next_url = None
    if page.next_from_ms is not None:
        next_url = _next_url(request, query, page.next_from_ms)
    body = render_body(query, page, uuid.uuid4().hex, next_url)
    headers: dict[str, str] = {"X-Cache": page.cache}
    if page.cache == "STALE":
        headers["Warning"] = STALE_WARNING
    return Response(body, media_type=MediaType.JSON, headers=headers)


@get(
    [V1_PREFIX + _RANGE, POLYGON_PREFIX + _RANGE],
    tags=["stocks"],
    summary="Aggregate bars of a stock, in Polygon's shape, from the range-aware cache",
    description=(
        "Query: adjusted (true), sort (asc|desc), limit (1..50000, default 5000). "
        "X-Cache says how it was served: HIT, MISS, PARTIAL, STALE or COALESCED."
    ),
    middleware=[RawAggregates],
)
async def aggregates(
    request: Request[Any, Any, Any],
    state: State,
    *,
    ticker: str,
    multiplier: str,
    timespan: str,
    from_: str,
    to: str,
) -> Response[Any]:
    bars: StockBars = state.services.extras[EXTRAS_KEY]
    params = request.query_params
    try:
        query = parse_aggs_query(ticker, multiplier, timespan, from_, to, params=params)
        query = _with_cursor(query, params.get("cursor"))
    except QueryError as exc:
        return error_response(400, str(exc))
    try:
        page = await bars.answer(query)
    except (UpstreamError, RedisError) as exc:
        return failure_response(exc)
    return _render(request, query, page)


STOCK_ROUTES = [aggregates]
