"""US Eastern calendar arithmetic: Polygon's dates, and the chunks the bar cache is cut into.

Polygon reads ``YYYY-MM-DD`` as a calendar day in US Eastern time and bucket
boundaries follow Eastern midnight, so the cache cuts every series into
Eastern calendar periods ("chunks").  A chunk is named by its first day.  The
chunk length grows with the bar size so that one chunk holds a few hundred
to a thousand bars: small enough to read on every hit, large enough that a
chart touches only a handful.

Bars ("buckets") sit on a grid of their own, which the chunks do not follow:
a weekly bar starts on a Sunday and can hold days of the next chunk.  Polygon
answers a range with every bar that overlaps it, whole: it "snaps" ``from``
back to the start of the bar that holds it and ``to`` forward to that bar's
end.  ``bar_start_ms`` is that snap.  Source, Polygon's knowledge base:
https://massive.com/knowledge-base/article/how-does-massive-treat-hourly-bars-when-querying-regular-trading-hours
"""

from __future__ import annotations

import math
from datetime import date, datetime, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

EASTERN = ZoneInfo("America/New_York")
DAY_MS = 86_400_000
INTRADAY_MS = {"second": 1000, "minute": 60_000, "hour": 3_600_000}
"""Width of one intraday bar; intraday bars are counted from each Eastern midnight."""
MONTHS = {"month": 1, "quarter": 3, "year": 12}
WEEK_ANCHOR = date(1970, 1, 4)
"""A Sunday: weekly bars begin Sunday at 00:00 Eastern (Polygon's knowledge base)."""

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


def bar_start_day(day: date, timespan: Timespan, multiplier: int) -> date:
    """The first day of the bar that holds ``day``, for day bars and longer.

    Documented for a multiplier of 1: days begin at midnight, weeks on Sunday,
    months on the 1st, quarters on Jan/Apr/Jul/Oct 1st (years on Jan 1st).
    Longer bars are counted on a fixed grid: days from 0001-01-01, weeks from a
    Sunday, months from year 0, so a bar's start does not depend on the query.
    """
    if timespan in INTRADAY_MS:
        return day
    if timespan in {"day", "week"}:
        days = multiplier * (7 if timespan == "week" else 1)
        anchor = WEEK_ANCHOR.toordinal() if timespan == "week" else 1
        return date.fromordinal(day.toordinal() - (day.toordinal() - anchor) % days)
    months = MONTHS[timespan] * multiplier
    index = (day.year * 12 + day.month - 1) // months * months
    return date(index // 12, index % 12 + 1, 1)


def bar_end_day(start: date, timespan: Timespan, multiplier: int) -> date:
    """The day after the last day of the bar starting on ``start`` (day bars and longer)."""
    if timespan in INTRADAY_MS:
        return start + timedelta(days=1)
    if timespan in {"day", "week"}:
        return start + timedelta(days=multiplier * (7 if timespan == "week" else 1))
    index = start.year * 12 + start.month - 1 + MONTHS[timespan] * multiplier
    return date(index // 12, index % 12 + 1, 1)


def bar_start_ms(ms: int, timespan: Timespan, multiplier: int) -> int:
    """The start of the bar that holds the instant ``ms``: where Polygon snaps ``from``."""
    midnight = eastern_midnight_ms(eastern_date(ms))
    if timespan in INTRADAY_MS:
        width = INTRADAY_MS[timespan] * multiplier
        return midnight + (ms - midnight) // width * width
    return eastern_midnight_ms(bar_start_day(eastern_date(ms), timespan, multiplier))


def chunk_closes_ms(start: date, timespan: Timespan, multiplier: int) -> int:
    """When every bar that starts in the chunk has ended.

    Usually the chunk's own end; later when its last bar runs on into the next
    chunk (the week that starts on the last Sunday of a decade).
    """
    span = CHUNK_SPAN[timespan]
    last_bar = bar_start_day(chunk_last_day(start, span), timespan, multiplier)
    return eastern_midnight_ms(
        max(next_chunk(start, span), bar_end_day(last_bar, timespan, multiplier))
    )


def open_chunk(today: date, timespan: Timespan, multiplier: int) -> date:
    """The chunk that holds the bar still open today (it may have begun in an earlier chunk)."""
    return chunk_start(bar_start_day(today, timespan, multiplier), CHUNK_SPAN[timespan])


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
