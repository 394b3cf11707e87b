"""``GET /v1/courses/history``: open/high/low/close of one direction from one source.

Parsing and the answer's bytes.  PostgreSQL is the store of record for
history (Redis holds only the latest quotes); ``history_read`` says how the
points are read from it behind the caches of closed chunks.  With Redis down
the chunks come from PostgreSQL; with PostgreSQL down the answer is a 503.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any

import asyncpg
import msgspec
from litestar import MediaType, Request, Response, get
from litestar.di import NamedDependency
from litestar.exceptions import ClientException, ServiceUnavailableException
from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.spec import Example
from litestar.params import QueryParameter

from ratesvc.courses.directions import NAMES, lookup
from ratesvc.courses.history_read import Span
from ratesvc.courses.state import CoursesState
from ratesvc.log import get_logger
from ratesvc.retry import STORE_ERRORS

log = get_logger("courses.history")

MINUTE_MS = 60_000
DAY_MS = 86_400_000
MAX_POINTS = 5000
"""Most buckets one answer may span (3.5 days of minutes, 52 days of 15 minutes)."""
MAX_EPOCH_MS = 253_402_300_799_999
"""9999-12-31T23:59:59.999Z, the last moment ISO-8601 can write with four digits."""


@dataclass(frozen=True)
class Interval:
    name: str
    ms: int
    chunk_buckets: int
    """Buckets per cached chunk: chunks stay small, so the open one is cheap to read."""

    @property
    def chunk_ms(self) -> int:
        return self.ms * self.chunk_buckets


INTERVALS = {
    i.name: i
    for i in (
        Interval("1m", MINUTE_MS, 60),
        Interval("5m", 5 * MINUTE_MS, 72),
        Interval("15m", 15 * MINUTE_MS, 24),
        Interval("1h", 60 * MINUTE_MS, 6),
        Interval("1d", DAY_MS, 1),
    )
}


class HistoryPoint(msgspec.Struct):
    """A point as documented: prices are JSON numbers (encoded from ``history_store.Point``)."""

    t: int
    """Start of the bucket, epoch milliseconds UTC (a multiple of the interval)."""
    open: float
    high: float
    low: float
    close: float
    samples: int
    """Rate samples folded into the bucket."""


class History(msgspec.Struct):
    direction: str
    exchanger: str
    interval: str
    points: list[HistoryPoint]


def _bad(parameter: str, detail: str, **extra: Any) -> ClientException:
    return ClientException(detail=detail, extra={"parameter": parameter, **extra})


def _one(
    request: Request[Any, Any, Any], name: str, spelling: Callable[[str], str] = str.strip
) -> str | None:
    """The parameter's value in its normal ``spelling``; None when absent or empty.

    Repeating a parameter is fine when every value means the same; else 400.
    """
    values = {spelling(v.strip()) for v in request.query_params.getall(name, []) if v.strip()}
    if len(values) > 1:
        raise _bad(name, f"{name} takes one value, got {len(values)}")
    return values.pop() if values else None


def parse_time(raw: str, parameter: str) -> int:
    """ISO-8601 (UTC when no offset is given) or epoch milliseconds -> epoch milliseconds."""
    if raw.isascii() and raw.isdigit():
        ms = int(raw) if len(raw) <= len(str(MAX_EPOCH_MS)) else MAX_EPOCH_MS + 1
    else:
        try:
            moment = datetime.fromisoformat(raw.replace("z", "Z"))
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=UTC)
            ms = int(moment.timestamp() * 1000)
        except (ValueError, OverflowError, OSError):
            raise _bad(
                parameter, f"{parameter} is not ISO-8601 or epoch milliseconds: {raw[:40]!r}"
            ) from None
    if not 0 <= ms <= MAX_EPOCH_MS:
        raise _bad(parameter, f"{parameter} is out of range: {raw[:40]!r}")
    return ms


def parse_query(request: Request[Any, Any, Any], now_ms: int, sources: Sequence[str]) -> Span:
    """The span asked for; ``sources``: the registry's names, the first one the default."""
    raw_direction = _one(request, "direction", str.upper)
    if raw_direction is None:
        raise _bad("direction", "direction is required", valid=list(NAMES))
    if "," in raw_direction:
        raise _bad("direction", "direction takes one value", valid=list(NAMES))
    direction = lookup(raw_direction)
    if direction is None:
        raise _bad("direction", f"unknown direction: {raw_direction[:40]}", valid=list(NAMES))
    source = _one(request, "exchanger", str.lower) or sources[0]
    if source not in sources:
        raise _bad("exchanger", f"unknown exchanger: {source[:40]}", valid=list(sources))
    interval_name = _one(request, "interval", str.lower) or "1m"
    interval = INTERVALS.get(interval_name)
    if interval is None:
        raise _bad("interval", f"unknown interval: {interval_name[:40]}", valid=list(INTERVALS))
    raw_to, raw_from = _one(request, "to"), _one(request, "from")
    to_ms = now_ms if raw_to is None else parse_time(raw_to, "to")
    from_ms = max(0, to_ms - DAY_MS) if raw_from is None else parse_time(raw_from, "from")
    if from_ms > to_ms:
        raise _bad("from", "from is after to")
    first = from_ms - from_ms % interval.ms
    buckets = (to_ms - to_ms % interval.ms - first) // interval.ms + 1
    if buckets > MAX_POINTS:
        raise _bad(
            "from",
            f"from..to spans {buckets} {interval.name} buckets, more than {MAX_POINTS}",
            max_points=MAX_POINTS,
        )
    return Span(direction.name, source, interval.name, interval.ms, interval.chunk_ms, first, to_ms)


_EXAMPLE = {
    "direction": "BTC-USD",
    "exchanger": "binance",
    "interval": "1m",
    "points": [
        {
            "t": 1764633600000,
            "open": 67187.33,
            "high": 67190.1,
            "low": 67180.02,
            "close": 67185.5,
            "samples": 58,
        },
        {
            "t": 1764633660000,
            "open": 67185.5,
            "high": 67201.0,
            "low": 67185.5,
            "close": 67199.99,
            "samples": 60,
        },
    ],
}
_BAD_EXAMPLE = {
    "error": "bad_request",
    "detail": "unknown interval: 2m",
    "parameter": "interval",
    "valid": list(INTERVALS),
}


def _documented(description: str, *examples: str, name: str | None = None) -> Any:
    """A query parameter's documentation (the handler parses the query itself)."""
    return QueryParameter(
        name=name, description=description, examples=[Example(value=v) for v in examples]
    )


@get(
    "/v1/courses/history",
    tags=["courses"],
    summary="Open/high/low/close of one direction over time",
    description=(
        "One point per bucket that has data, ascending by `t` (bucket start, epoch ms UTC, a "
        "multiple of the interval); the newest bucket may still be open and grow. Buckets are "
        "built from the fresh rates of one source, sampled whenever a quote moves them. "
        f"At most {MAX_POINTS} buckets per answer. An empty value counts as not given. "
        "Bad input is a 400 whose `parameter` names the culprit."
    ),
    responses={
        200: ResponseSpec(
            data_container=History,
            description="The points, ascending",
            examples=[Example(summary="Two minutes of BTC-USD", value=_EXAMPLE)],
        ),
        400: ResponseSpec(
            data_container=dict[str, Any],
            description="Bad input; `parameter` names it",
            examples=[Example(summary="Unknown interval", value=_BAD_EXAMPLE)],
        ),
        503: ResponseSpec(
            data_container=dict[str, Any],
            description="PostgreSQL unreachable (history is its record); see Retry-After",
        ),
    },
)
async def courses_history(
    request: Request[Any, Any, Any],
    courses_state: NamedDependency[CoursesState],
    *,
    direction: Annotated[
        str | None, _documented("One direction (case-insensitive); required", "BTC-USD", "eth-rub")
    ] = None,
    exchanger: Annotated[
        str | None,
        _documented(
            "A source `/v1/courses` accepts; default the first in failover order", "coingecko"
        ),
    ] = None,
    interval: Annotated[
        str | None, _documented("Bucket size: 1m (default), 5m, 15m, 1h or 1d", "1h")
    ] = None,
    from_: Annotated[
        str | None,
        _documented(
            "ISO-8601 (UTC when no offset) or epoch ms; default `to` - 24 h",
            "2026-12-01T00:00:00Z",
            "1764547200000",
            name="from",
        ),
    ] = None,
    to: Annotated[
        str | None, _documented("ISO-8601 or epoch ms; default now", "2026-12-02T00:00:00Z")
    ] = None,
) -> Response[History]:
    now_ms = int(time.time() * 1000)
    span = parse_query(request, now_ms, courses_state.sources.names)
    try:
        fragments = await courses_state.history.fragments(span, now_ms)
    except (asyncpg.PostgresError, asyncpg.InterfaceError, *STORE_ERRORS) as exc:
        log.warning("history_store_unavailable", error=repr(exc))
        raise ServiceUnavailableException(
            detail="history temporarily unavailable", headers={"Retry-After": "5"}
        ) from None
    head = b'{"direction":"%s","exchanger":"%s","interval":"%s","points":[' % (
        span.direction.encode(),
        span.source.encode(),
        span.interval.encode(),
    )
    body = head + b",".join(fragments) + b"]}"
    response: Response[Any] = Response(
        body, media_type=MediaType.JSON, headers={"Cache-Control": "public, max-age=5"}
    )
    return response


ROUTES = [courses_history]
