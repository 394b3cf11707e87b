"""``GET /v1/stocks/aggs/...`` and Polygon's own path, ``GET /v2/aggs/ticker/...``.

Both answer in Polygon's shape so Polygon's clients work unchanged with their
base URL pointed here.  A client's ``Authorization`` header or ``apiKey`` is
never read: upstream calls carry the service's key only.  Every answer has an
``X-Cache`` header; a stale one also ``Warning: 110``.  ``next_url`` points
back here, the original path plus ``cursor`` (the next bar's time in ms) in
the query string, because Polygon's clients keep only the path and query.

One answer function, ``aggs_answer``, computes every reply (200, 400, 5xx)
from the raw ASGI scope.  The route's raw layer sends it before Litestar
builds a request or a response; the ``@get`` handler is the documented form
of the same route and returns the same reply (``routes(raw=False)`` builds it
without the raw layer, which is how a test proves the two agree byte for
byte).  An answer served lately comes from this process's ``HotPages``.
"""

from __future__ import annotations

import uuid
from functools import lru_cache
from typing import Any
from urllib.parse import quote, urlencode

import msgspec
from litestar import Request, get
from litestar.di import NamedDependency
from litestar.handlers import HTTPRouteHandler
from litestar.response.base import ASGIResponse
from litestar.types import Scope
from redis.exceptions import RedisError

from ratesvc.api.raw import Reply, answered_by, json_reply, to_asgi_response
from ratesvc.stocks import replies
from ratesvc.stocks.cache import version_fields
from ratesvc.stocks.errors import UpstreamError
from ratesvc.stocks.hot import HotPage
from ratesvc.stocks.models import CacheStatus
from ratesvc.stocks.query import AggsQuery, QueryError, parse_aggs_query
from ratesvc.stocks.service import Page
from ratesvc.stocks.state import StocksState

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


@lru_cache(maxsize=4096)
def parse_request(path: tuple[str, str, str, str, str], query_string: bytes) -> AggsQuery:
    """The one parser of the route: path parameters and query string to a checked query.

    Cached (it is pure): charts ask the same ranges again and again.
    """
    params = replies.first_values(query_string)
    query = parse_aggs_query(*path, params=params)
    return _with_cursor(query, params.get("cursor"))


def _next_path(scope: Scope, query: AggsQuery, position: int) -> str:
    """``next_url`` without the base URL: same path, same query, a ``cursor``."""
    series = query.series
    prefix = POLYGON_PREFIX if scope["path"].startswith(POLYGON_PREFIX) else V1_PREFIX
    from_, to = scope["path_params"]["from_"], scope["path_params"]["to"]
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
    return f"{path}?{urlencode(params)}"


def render_head(query: AggsQuery, page: Page) -> bytes:
    """Polygon's answer up to the request id, field by field in Polygon's order.

    Equal to encoding ``AggsResponse`` (with ``render_tail``), without decoding
    and re-encoding the bars.
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
    parts += [b',"status":', _encode(page.status), b',"request_id":']
    return b"".join(parts)


def render_tail(head: bytes, count: int, request_id: str, next_url: str | None) -> bytes:
    """The whole body: ``head``, this answer's request id, the count and ``next_url``."""
    parts = [head, _encode(request_id), b',"count":', str(count).encode()]
    if next_url is not None:
        parts += [b',"next_url":', _encode(next_url)]
    parts.append(b"}")
    return b"".join(parts)


def render_body(query: AggsQuery, page: Page, request_id: str, next_url: str | None) -> bytes:
    return render_tail(render_head(query, page), page.count, request_id, next_url)


def _reply(scope: Scope, page: HotPage, cache: CacheStatus) -> Reply:
    """The reply with this answer's own request id and ``next_url`` on the base URL asked."""
    next_url = None if page.next_path is None else replies.base_url(scope) + page.next_path
    body = render_tail(page.head, page.count, uuid.uuid4().hex, next_url)
    return json_reply(200, body, *replies.cache_headers(cache))


async def aggs_answer(scope: Scope, state: StocksState) -> Reply:
    """The answer of ``GET /v1/stocks/aggs/...`` (and ``/v2/aggs/ticker/...``) to this request."""
    bars, hot = state.bars, state.hot
    key = (scope["path"], scope["query_string"])
    try:
        kept = await hot.get(key)
        if kept is not None:
            bars.stats.answers[("aggs", "HIT")] += 1
            return _reply(scope, kept, "HIT")
        path = scope["path_params"]
        try:
            query = parse_request(
                (path["ticker"], path["multiplier"], path["timespan"], path["from_"], path["to"]),
                scope["query_string"],
            )
        except QueryError as exc:
            return replies.error_reply(400, str(exc))
        page = await bars.answer(query)
    except (UpstreamError, RedisError) as exc:
        return replies.failure_reply(exc)
    next_path = None if page.next_from_ms is None else _next_path(scope, query, page.next_from_ms)
    versions = page.versions or {}
    rendered = HotPage(
        series=query.series,
        fields=version_fields(list(versions)),
        versions=tuple(versions.values()),
        fresh_until_ms=page.fresh_until_ms,
        head=render_head(query, page),
        count=page.count,
        next_path=next_path,
    )
    if page.versions is not None:
        hot.keep(key, rendered)
    return _reply(scope, rendered, page.cache)


def aggregates_route(*, raw: bool = True) -> HTTPRouteHandler:
    """The aggregates route; ``raw=False`` leaves out the raw ASGI layer (for the test that
    compares both forms)."""

    async def aggregates(
        request: Request[Any, Any, Any],
        stocks_state: NamedDependency[StocksState],
        *,
        ticker: str,
        multiplier: str,
        timespan: str,
        from_: str,
        to: str,
    ) -> ASGIResponse:
        del ticker, multiplier, timespan, from_, to  # documented here; parsed by parse_request
        return to_asgi_response(await aggs_answer(request.scope, stocks_state))

    middleware = [answered_by(replies.with_state(aggs_answer))] if raw else None
    return get(
        [V1_PREFIX + _RANGE, POLYGON_PREFIX + _RANGE],
        middleware=middleware,
        tags=["stocks"],
        summary="Aggregate bars of a stock, in Polygon's shape, from the range-aware cache",
        description=(
            "Query: adjusted (true), sort (asc|desc), limit (1..50000, default 5000). "
            "X-Cache says how it was served: HIT, MISS, PARTIAL, STALE or COALESCED."
        ),
    )(aggregates)
