"""Parse and check an aggregates request before anything is looked up or fetched.

Accepts what Polygon accepts: ``from``/``to`` as ``YYYY-MM-DD`` (an Eastern
calendar day) or as Unix milliseconds, mixed freely.  A date ``to`` covers
its whole day; a millisecond bound is inclusive.  As on Polygon, the answer
holds every bar that overlaps the range, whole: ``from`` is moved back to
the start of the bar that holds it (a weekly bar asked from a Wednesday
starts on the Sunday before), and the bar holding ``to`` is answered in full.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date, timedelta
from typing import Literal, cast

import msgspec

from ratesvc.stocks.models import SeriesKey
from ratesvc.stocks.timegrid import TIMESPANS, bar_start_ms, eastern_midnight_ms

DEFAULT_LIMIT = 5000
MAX_LIMIT = 50_000
MIN_YEAR = 1900
MAX_YEAR = 2100

# Polygon tickers: AAPL, BRK.A, X:BTCUSD, C:EURUSD, I:SPX, O:SPY251219C00650000.
_TICKER = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.:_-]{0,39}$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_MILLIS = re.compile(r"^\d{1,15}$")
_POSITIVE_INT = re.compile(r"^[0-9]{1,9}$")

Sort = Literal["asc", "desc"]


class QueryError(ValueError):
    """The request is malformed; the message says what to fix."""


class AggsQuery(msgspec.Struct, frozen=True, kw_only=True):
    series: SeriesKey
    from_ms: int
    """Earliest bar start included: the start of the bar that holds the asked ``from``."""
    to_ms: int
    """Latest bar start included (the bar that holds ``to`` starts at or before it)."""
    sort: Sort
    limit: int


def _bound(raw: str, name: str, *, end: bool) -> int:
    """``raw`` as an instant in ms; for an ``end`` date, the last ms of that Eastern day."""
    if _MILLIS.match(raw):
        if int(raw) >= eastern_midnight_ms(date(MAX_YEAR, 1, 1)):
            raise QueryError(f"`{name}` {raw!r} is a timestamp after {MAX_YEAR - 1}")
        return int(raw)
    if _DATE.match(raw):
        try:
            day = date.fromisoformat(raw)
        except ValueError:
            raise QueryError(f"`{name}` {raw!r} is not a valid calendar date") from None
        if not MIN_YEAR <= day.year < MAX_YEAR:
            raise QueryError(f"`{name}` {raw!r} is outside {MIN_YEAR}..{MAX_YEAR - 1}")
        if end:
            return eastern_midnight_ms(day + timedelta(days=1)) - 1
        return eastern_midnight_ms(day)
    raise QueryError(f"`{name}` {raw!r} must be a date YYYY-MM-DD or a Unix timestamp in ms")


def _flag(params: Mapping[str, str], name: str, default: bool) -> bool:
    raw = params.get(name)
    if raw is None:
        return default
    lowered = raw.lower()
    if lowered in {"true", "1"}:
        return True
    if lowered in {"false", "0"}:
        return False
    raise QueryError(f"`{name}` must be true or false, not {raw!r}")


def check_ticker(ticker: str) -> None:
    """Raise QueryError unless ``ticker`` is spelled as Polygon's tickers are."""
    if not _TICKER.match(ticker):
        raise QueryError(
            f"ticker {ticker!r} is malformed: expected letters, digits and . : _ - "
            "(like AAPL, BRK.A or X:BTCUSD), at most 40 characters"
        )


def parse_aggs_query(
    ticker: str,
    multiplier: str,
    timespan: str,
    from_: str,
    to: str,
    *,
    params: Mapping[str, str],
) -> AggsQuery:
    """Check every part of the request; raise QueryError naming the first bad one."""
    check_ticker(ticker)
    if not _POSITIVE_INT.match(multiplier) or int(multiplier) < 1:
        raise QueryError(f"multiplier {multiplier!r} must be a positive integer")
    if timespan not in TIMESPANS:
        raise QueryError(f"timespan {timespan!r} is unknown; use one of {', '.join(TIMESPANS)}")
    from_ms = _bound(from_, "from", end=False)
    to_ms = _bound(to, "to", end=True)
    if from_ms > to_ms:
        raise QueryError(f"`from` {from_!r} is after `to` {to!r}")

    sort = params.get("sort", "asc")
    if sort not in {"asc", "desc"}:
        raise QueryError(f"`sort` must be asc or desc, not {sort!r}")
    raw_limit = params.get("limit")
    limit = DEFAULT_LIMIT
    if raw_limit is not None:
        if not _POSITIVE_INT.match(raw_limit) or not 1 <= int(raw_limit) <= MAX_LIMIT:
            raise QueryError(f"`limit` must be an integer from 1 to {MAX_LIMIT}, not {raw_limit!r}")
        limit = int(raw_limit)
    series = SeriesKey(
        ticker=ticker,
        multiplier=int(multiplier),
        timespan=timespan,
        adjusted=_flag(params, "adjusted", default=True),
    )
    first_bar_ms = bar_start_ms(from_ms, series.timespan, series.multiplier)
    return AggsQuery(
        series=series, from_ms=first_bar_ms, to_ms=to_ms, sort=cast(Sort, sort), limit=limit
    )
