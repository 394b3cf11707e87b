"""Spliced answers are exactly what encoding Polygon's answer shape would give."""

from __future__ import annotations

import msgspec
import pytest
from msgspec import UNSET

from ratesvc.stocks.chunk import CachedChunk
from ratesvc.stocks.models import AggsResponse, Bar, SeriesKey
from ratesvc.stocks.query import AggsQuery
from ratesvc.stocks.routes import render_body
from ratesvc.stocks.service import Page

BARS = [
    Bar(v=float(10 * i), vw=1.5, o=1.0, c=2.0, h=3.0, l=0.5, t=1000 * i, n=i) for i in range(1, 9)
]


def test_chunk_round_trips_through_its_stored_form() -> None:
    chunk = CachedChunk.from_bars(123, "DELAYED", BARS)

    again = CachedChunk.decode(chunk.encode())

    assert (again.fetched_ms, again.status, again.count) == (123, "DELAYED", 8)
    assert (again.first_t, again.last_t) == (1000, 8000)
    assert again.bars() == BARS


@pytest.mark.parametrize(
    ("window", "sort", "room", "expected", "left_out"),
    [
        ((0, 10_000), "asc", 100, BARS, None),
        ((0, 10_000), "asc", 3, BARS[:3], 4000),
        ((2500, 6000), "asc", 100, BARS[2:6], None),
        ((0, 10_000), "desc", 100, BARS[::-1], None),
        ((2000, 5000), "desc", 2, [BARS[4], BARS[3]], 3000),
        ((9000, 10_000), "asc", 5, [], None),
    ],
)
def test_take_selects_orders_and_cuts(
    window: tuple[int, int],
    sort: str,
    room: int,
    expected: list[Bar],
    left_out: int | None,
) -> None:
    chunk = CachedChunk.decode(CachedChunk.from_bars(1, "OK", BARS).encode())

    fragment, count, cut = chunk.take(*window, sort, room)  # type: ignore[arg-type]

    assert msgspec.json.decode(b"[" + fragment + b"]", type=list[Bar]) == expected
    assert count == len(expected)
    assert cut == left_out


@pytest.mark.parametrize("next_url", [None, "http://h/v2/aggs/ticker/A/range/1/day/1/2?cursor=5"])
@pytest.mark.parametrize("bars", [BARS, []])
def test_rendered_body_equals_the_encoded_response(next_url: str | None, bars: list[Bar]) -> None:
    series = SeriesKey(ticker="BRK.A", multiplier=1, timespan="day", adjusted=False)
    query = AggsQuery(series=series, from_ms=0, to_ms=1, sort="asc", limit=10)
    halves = [bars[:3], bars[3:]] if bars else []
    fragments: list[bytes | memoryview] = [msgspec.json.encode(h)[1:-1] for h in halves]
    page = Page(fragments=fragments, count=len(bars), status="OK", cache="HIT")

    body = render_body(query, page, "abc", next_url)

    expected = AggsResponse(
        ticker="BRK.A",
        queryCount=len(bars),
        resultsCount=len(bars),
        adjusted=False,
        results=bars or UNSET,
        status="OK",
        request_id="abc",
        count=len(bars),
        next_url=UNSET if next_url is None else next_url,
    )
    assert body == msgspec.json.encode(expected)
