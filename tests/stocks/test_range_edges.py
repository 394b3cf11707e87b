"""The bars at both ends of a range, for week, month, quarter and year bars.

Polygon's rule: ``from`` snaps back to the start of the bar that holds it,
``to`` on to the end of its bar, so every bar that overlaps the range comes
back whole.  Source, Polygon's knowledge base:
https://massive.com/knowledge-base/article/how-does-massive-treat-hourly-bars-when-querying-regular-trading-hours
Weeks begin on Sunday 00:00 Eastern, months on the 1st, quarters on the 1st
of Jan/Apr/Jul/Oct.
"""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

import httpx
import msgspec
import pytest
from redis.asyncio import Redis

from ratesvc.stocks.cache import BarStore
from ratesvc.stocks.chunk import CachedChunk
from ratesvc.stocks.models import SeriesKey
from ratesvc.stocks.timegrid import bar_start_ms, chunk_closes_ms, open_chunk
from stocks.helpers import all_pages, upstream_bars

NEW_YORK = ZoneInfo("America/New_York")


def et(day: str, hour: int = 0) -> int:
    """Milliseconds of ``hour`` o'clock on ``day`` in New York, computed independently."""
    y, m, d = map(int, day.split("-"))
    return int(datetime(y, m, d, hour, tzinfo=NEW_YORK).timestamp() * 1000)


EDGES = [
    # (timespan, from, to, starts of the bars expected, the day after the last bar)
    # From a Wednesday: the week that holds it began on the Sunday before, in the
    # previous decade (another cache chunk).  To a Sunday: that week, whole.
    ("week", "2020-01-01", "2020-01-19",
     ["2019-12-29", "2020-01-05", "2020-01-12", "2020-01-19"], "2020-01-26"),
    # To the last Sunday of a decade: its week holds days of the next one.
    ("week", "2019-12-18", "2019-12-29", ["2019-12-15", "2019-12-22", "2019-12-29"], "2020-01-05"),
    ("month", "2024-01-15", "2024-03-01", ["2024-01-01", "2024-02-01", "2024-03-01"], "2024-04-01"),
    ("quarter", "2024-02-15", "2024-07-01",
     ["2024-01-01", "2024-04-01", "2024-07-01"], "2024-10-01"),
    ("year", "2021-06-15", "2023-01-01", ["2021-01-01", "2022-01-01", "2023-01-01"], "2024-01-01"),
]  # fmt: skip


@pytest.mark.parametrize("edge", EDGES, ids=lambda e: f"{e[0]}-{e[1]}-{e[2]}")
async def test_bars_at_both_ends_are_the_whole_bars_polygon_answers(
    client: httpx.AsyncClient,
    polygon_url: str,
    edge: tuple[str, str, str, list[str], str],
) -> None:
    timespan, from_, to, starts, after_last = edge
    tail = f"/SPY/range/1/{timespan}/{from_}/{to}"

    ours, _ = await all_pages(client, "/v1/stocks/aggs" + tail)
    theirs = await upstream_bars(polygon_url, "/v2/aggs/ticker" + tail, {})
    again, responses = await all_pages(client, "/v1/stocks/aggs" + tail)

    assert [bar["t"] for bar in ours] == [et(day) for day in starts]
    assert ours == theirs
    assert again == ours
    assert responses[0].headers["X-Cache"] == "HIT"
    # The edge bars are whole: the same bars as a range that covers them exactly.
    exact, _ = await all_pages(
        client, f"/v1/stocks/aggs/SPY/range/1/{timespan}/{starts[0]}/{after_last}"
    )
    assert exact[0] == ours[0]
    assert exact[len(ours) - 1] == ours[-1]


@pytest.mark.parametrize("sort", ["asc", "desc"])
async def test_edge_bars_page_once_each(client: httpx.AsyncClient, sort: str) -> None:
    """Pages continue at a chunk's first day, mid-week: the snapped week is not repeated."""
    path = "/v1/stocks/aggs/SPY/range/1/week/2020-01-01/2020-02-09"

    whole, _ = await all_pages(client, path, {"sort": sort})
    paged, responses = await all_pages(client, path, {"sort": sort, "limit": "1"})

    assert len(whole) == 7  # 2019-12-29 .. 2020-02-09
    assert paged == whole
    assert len(responses) == 7


async def test_millisecond_bounds_snap_to_the_bars_that_hold_them(
    client: httpx.AsyncClient, polygon_url: str
) -> None:
    # Wednesday noon to Sunday 09:00: three weeks, the first from the Sunday before.
    tail = f"/SPY/range/1/week/{et('2024-01-10', 12)}/{et('2024-01-21', 9)}"

    ours, _ = await all_pages(client, "/v1/stocks/aggs" + tail)
    theirs = await upstream_bars(polygon_url, "/v2/aggs/ticker" + tail, {})

    assert [bar["t"] for bar in ours] == [et("2024-01-07"), et("2024-01-14"), et("2024-01-21")]
    assert ours == theirs


@pytest.mark.parametrize(
    ("timespan", "multiplier", "at", "start"),
    [
        ("minute", 1, et("2024-05-06", 12) + 30_500, et("2024-05-06", 12)),
        ("hour", 4, et("2024-05-06", 11) + 1, et("2024-05-06", 8)),
        ("day", 1, et("2024-05-06", 15), et("2024-05-06")),
        ("week", 1, et("2024-01-10", 12), et("2024-01-07")),
        ("week", 1, et("2024-01-07"), et("2024-01-07")),
        ("week", 1, et("2024-01-06", 23), et("2023-12-31")),
        ("month", 1, et("2024-02-29", 20), et("2024-02-01")),
        ("quarter", 1, et("2024-06-30", 23), et("2024-04-01")),
        ("quarter", 1, et("2024-10-01"), et("2024-10-01")),
        ("year", 1, et("2024-12-31", 23), et("2024-01-01")),
        ("month", 6, et("2024-08-15"), et("2024-07-01")),
    ],
)
def test_from_snaps_to_the_start_of_its_bar(
    timespan: str, multiplier: int, at: int, start: int
) -> None:
    assert bar_start_ms(at, timespan, multiplier) == start  # type: ignore[arg-type]


def test_a_chunk_closes_when_its_last_bar_ends() -> None:
    # The weeks of the 2010s end with the one from Sunday 2019-12-29 to 2020-01-04.
    assert chunk_closes_ms(date(2010, 1, 1), "week", 1) == et("2020-01-05")
    # Months, quarters and years end with their decade.
    for timespan in ("month", "quarter", "year"):
        assert chunk_closes_ms(date(2010, 1, 1), timespan, 1) == et("2020-01-01")
    # On 2020-01-02 the open weekly bar is the one in the 2010s chunk.
    assert open_chunk(date(2020, 1, 2), "week", 1) == date(2010, 1, 1)
    assert open_chunk(date(2020, 1, 5), "week", 1) == date(2020, 1, 1)
    assert open_chunk(date(2020, 1, 2), "month", 1) == date(2020, 1, 1)


async def test_a_chunk_whose_last_week_is_open_is_not_final(redis: Redis) -> None:
    store = BarStore(redis, open_ttl_s=60, settle_s=3600, adjusted_max_age_s=7 * 86400)
    weeks = SeriesKey(ticker="SPY", multiplier=1, timespan="week", adjusted=False)
    months = msgspec.structs.replace(weeks, timespan="month")
    # Fetched on Thursday 2020-01-02: the decade is over, its last week is not.
    fetched = et("2020-01-02", 12)
    chunk = CachedChunk.from_bars(fetched, "OK", [])
    two_minutes_later = fetched + 120_000

    assert not store.is_fresh(weeks, date(2010, 1, 1), chunk, two_minutes_later)
    assert store.is_fresh(months, date(2010, 1, 1), chunk, two_minutes_later)
    # Fetched once that week has ended and settled, the chunk is final.
    settled = CachedChunk.from_bars(et("2020-01-05", 1) + 1, "OK", [])
    assert store.is_fresh(weeks, date(2010, 1, 1), settled, et("2026-01-01"))
