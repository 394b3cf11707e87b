"""US Eastern calendar arithmetic: Polygon's dates, and the chunks the bar cache is cut into.

Polygon reads ``YYYY-MM-DD`` as a calendar day in US Eastern time and bucket
boundaries follow Eastern midnight, so the cache cuts every series into
Eastern calendar periods ("chunks").  A chunk is named by its first day.  The
chunk length grows with the bar size so that one chunk holds a few hundred
to a thousand bars: small enough to read on every hit, large enough that a
chart touches only a handful.
"""

from __future__ import annotations

import math
from datetime import date, datetime, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

EASTERN = ZoneInfo("America/New_York")
DAY_MS = 86_400_000

Timespan = Literal["second", "minute", "hour", "day", "week", "month", "quarter", "year"]
TIMESPANS: tuple[Timespan, ...] = (
    "second",
    "minute",
    "hour",
    "day",
    "week",
    "month",
    "quarter",
    "year",
)
ChunkSpan = Literal["day", "month", "year", "decade"]

CHUNK_SPAN: dict[Timespan, ChunkSpan] = {
    "second": "day",
    "minute": "day",
    "hour": "month",
    "day": "year",
    "week": "decade",
    "month": "decade",
    "quarter": "decade",
    "year": "decade",
}

# Bars per calendar day of a 1-multiplier series on a US stock (16 trading hours,
# five days a week).  Only used to guess how many chunks fill one page.
_BARS_PER_DAY: dict[Timespan, float] = {
    "second": 16 * 3600 * 5 / 7,
    "minute": 16 * 60 * 5 / 7,
    "hour": 16 * 5 / 7,
    "day": 5 / 7,
    "week": 1 / 7,
    "month": 12 / 365.25,
    "quarter": 4 / 365.25,
    "year": 1 / 365.25,
}
_CHUNK_DAYS: dict[ChunkSpan, float] = {"day": 1, "month": 30.44, "year": 365.25, "decade": 3652.5}


def eastern_midnight_ms(day: date) -> int:
    """The instant (ms since the epoch) at which ``day`` begins in New York."""
    return int(datetime(day.year, day.month, day.day, tzinfo=EASTERN).timestamp() * 1000)


def eastern_date(ms: int) -> date:
    """The New York calendar day that contains the instant ``ms``."""
    return datetime.fromtimestamp(ms / 1000, EASTERN).date()


def eastern_today(now_ms: int) -> date:
    return eastern_date(now_ms)


def chunk_start(day: date, span: ChunkSpan) -> date:
    if span == "day":
        return day
    if span == "month":
        return day.replace(day=1)
    if span == "year":
        return date(day.year, 1, 1)
    return date(day.year - day.year % 10, 1, 1)


def next_chunk(start: date, span: ChunkSpan) -> date:
    if span == "day":
        return start + timedelta(days=1)
    if span == "month":
        return date(start.year + start.month // 12, start.month % 12 + 1, 1)
    if span == "year":
        return date(start.year + 1, 1, 1)
    return date(start.year + 10, 1, 1)


def chunk_last_day(start: date, span: ChunkSpan) -> date:
    return next_chunk(start, span) - timedelta(days=1)


def chunk_end_ms(start: date, span: ChunkSpan) -> int:
    """The instant the chunk ends (exclusive): the Eastern midnight after its last day."""
    return eastern_midnight_ms(next_chunk(start, span))


def chunks_between(first_day: date, last_day: date, span: ChunkSpan) -> list[date]:
    """Starts of every chunk that overlaps the days ``first_day..last_day``, oldest first."""
    chunks = []
    current = chunk_start(first_day, span)
    while current <= last_day:
        chunks.append(current)
        current = next_chunk(current, span)
    return chunks


def bars_per_chunk(timespan: Timespan, multiplier: int) -> float:
    """A rough count of bars in one chunk of a busy stock (at least a fraction of one)."""
    span = CHUNK_SPAN[timespan]
    return max(_BARS_PER_DAY[timespan] * _CHUNK_DAYS[span] / multiplier, 0.01)


def chunks_for(limit: int, timespan: Timespan, multiplier: int) -> int:
    """How many chunks probably hold ``limit`` bars, plus one for a partial first chunk."""
    return math.ceil(limit / bars_per_chunk(timespan, multiplier)) + 1


def fetch_block(chunk: date, timespan: Timespan, multiplier: int) -> list[date]:
    """Every chunk fetched along with ``chunk`` when it is missing (read-ahead).

    Calls are the scarce resource and one call returns up to 50,000 bars, so a
    missing chunk is fetched with the rest of its block: the ISO week of
    1-minute bars, the month of coarser minute bars, the year of hour bars,
    the decade of day bars (a few thousand bars each, one page).  A user
    scrolling or zooming then mostly finds the neighbouring chunks cached.
    """
    span = CHUNK_SPAN[timespan]
    if timespan == "minute" and multiplier == 1:
        first = chunk - timedelta(days=chunk.weekday())
        return [first + timedelta(days=i) for i in range(7)]
    if timespan == "minute":
        first = chunk.replace(day=1)
        return chunks_between(first, chunk_last_day(first, "month"), span)
    if timespan == "hour":
        return chunks_between(date(chunk.year, 1, 1), date(chunk.year, 12, 31), span)
    if timespan == "day":
        first = chunk_start(chunk, "decade")
        return chunks_between(first, chunk_last_day(first, "decade"), span)
    return [chunk]
