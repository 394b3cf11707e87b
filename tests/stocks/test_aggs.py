"""Answers match Polygon's, bar for bar, in Polygon's shape, for many query shapes."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from ratesvc_sim.polygon import PolygonSimulator
from stocks.conftest import API_KEY
from stocks.helpers import all_pages, upstream_bars

SHAPES = [
    # (ticker, multiplier, timespan, from, to, query)
    ("AAPL", 1, "minute", "2024-03-08", "2024-03-12", {}),  # DST starts on 2024-03-10
    ("AAPL", 5, "minute", "2024-01-02", "2024-01-09", {"sort": "desc"}),
    ("MSFT", 1, "hour", "2023-12-20", "2024-02-03", {"adjusted": "false"}),
    ("MSFT", 4, "hour", "2024-01-01", "2024-01-31", {}),
    ("TSLA", 1, "day", "2019-11-15", "2021-02-10", {"adjusted": "false"}),  # across the split
    ("TSLA", 1, "day", "2019-11-15", "2021-02-10", {"sort": "desc", "limit": "50"}),
    ("BRK.A", 3, "day", "2022-01-01", "2022-06-30", {}),
    ("X:BTCUSD", 1, "week", "2015-03-01", "2024-06-30", {}),
    ("SPY", 1, "month", "2010-01-01", "2024-12-31", {}),
    ("SPY", 1, "quarter", "2001-01-01", "2024-12-31", {"sort": "desc"}),
    ("SPY", 1, "year", "1999-01-01", "2024-12-31", {}),
    ("NVDA", 30, "second", "2024-05-06", "2024-05-06", {"limit": "200"}),
    ("NVDA", 1, "minute", "1715011200000", "1715040000000", {}),  # ms bounds
    ("NVDA", 15, "minute", "2024-05-06", "1715184000000", {"limit": "33"}),  # mixed
]


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: f"{s[0]}-{s[1]}{s[2]}-{s[3]}-{s[5]}")
async def test_results_are_identical_to_polygons(
    client: httpx.AsyncClient,
    polygon_url: str,
    shape: tuple[str, int, str, str, str, dict[str, str]],
) -> None:
    ticker, multiplier, timespan, from_, to, query = shape
    tail = f"/{ticker}/range/{multiplier}/{timespan}/{from_}/{to}"

    ours, responses = await all_pages(client, "/v1/stocks/aggs" + tail, query)
    theirs = await upstream_bars(polygon_url, "/v2/aggs/ticker" + tail, query)

    assert theirs, "the shape should have bars"
    assert ours == theirs
    limit = int(query.get("limit", 5000))
    for response in responses:
        body = response.json()
        assert body["ticker"] == ticker
        assert body["adjusted"] is (query.get("adjusted", "true") == "true")
        assert body["status"] == "OK"
        assert body["resultsCount"] == body["count"] == len(body.get("results", []))
        assert body["resultsCount"] <= limit
        assert len(body["request_id"]) == 32


async def test_pagination_is_complete_and_points_back_here(client: httpx.AsyncClient) -> None:
    path = "/v1/stocks/aggs/AMD/range/1/minute/2024-02-05/2024-02-07"

    bars, responses = await all_pages(client, path, {"limit": "97", "sort": "desc"})
    whole, _ = await all_pages(client, path, {"limit": "50000", "sort": "desc"})

    assert len(whole) == 3 * 16 * 60
    assert bars == whole
    assert len(responses) == -(-len(whole) // 97)
    base = str(client.base_url).rstrip("/")
    for response in responses[:-1]:
        next_url = response.json()["next_url"]
        assert next_url.startswith(base + path + "?")
        state = parse_qs(urlsplit(next_url).query)
        assert state["limit"] == ["97"]
        assert state["sort"] == ["desc"]
        assert "cursor" in state
        assert API_KEY not in next_url
        assert "polygon" not in next_url
    assert "next_url" not in responses[-1].json()


async def test_polygon_path_pages_stay_on_polygon_path(client: httpx.AsyncClient) -> None:
    path = "/v2/aggs/ticker/AMD/range/1/hour/2024-02-05/2024-02-09"

    bars, responses = await all_pages(client, path, {"limit": "10"})

    assert len(bars) == 5 * 16
    assert all(urlsplit(r.json()["next_url"]).path == path for r in responses[:-1]), (
        "next_url keeps the path the client used"
    )


async def test_bars_follow_us_eastern_days(client: httpx.AsyncClient) -> None:
    winter = await client.get("/v1/stocks/aggs/AAPL/range/1/day/2024-01-02/2024-01-02")
    summer = await client.get("/v1/stocks/aggs/AAPL/range/1/day/2024-07-01/2024-07-01")

    assert [b["t"] for b in winter.json()["results"]] == [1704171600000]  # 05:00Z, EST
    assert [b["t"] for b in summer.json()["results"]] == [1719806400000]  # 04:00Z, EDT


async def test_weekend_and_unknown_ticker_have_no_results(
    client: httpx.AsyncClient, polygon: PolygonSimulator
) -> None:
    weekend = await client.get("/v1/stocks/aggs/AAPL/range/1/minute/2024-01-06/2024-01-07")
    unknown = await client.get("/v2/aggs/ticker/aapl/range/1/day/2024-01-01/2024-01-31")

    for response in (weekend, unknown):
        assert response.status_code == 200
        body = response.json()
        assert "results" not in body  # as Polygon: left out when empty
        assert body["resultsCount"] == body["queryCount"] == body["count"] == 0
        assert "next_url" not in body
    assert unknown.json()["ticker"] == "aapl"
    assert polygon.call_count == 2


async def test_every_answer_says_how_it_was_served(client: httpx.AsyncClient) -> None:
    path = "/v1/stocks/aggs/IBM/range/1/day/2023-01-01/2023-03-31"

    first = await client.get(path)
    again = await client.get(path, params={"sort": "desc", "limit": "3"})

    assert first.headers["X-Cache"] == "MISS"
    assert again.headers["X-Cache"] == "HIT"
    assert again.json()["results"] == first.json()["results"][::-1][:3]


async def test_a_date_range_in_the_future_is_empty_without_a_call(
    client: httpx.AsyncClient, polygon: PolygonSimulator
) -> None:
    response = await client.get("/v1/stocks/aggs/IBM/range/1/day/2099-01-01/2099-01-31")

    assert response.status_code == 200
    assert response.json()["resultsCount"] == 0
    assert response.headers["X-Cache"] == "HIT"
    assert polygon.call_count == 0
