"""Both official clients, unmodified, call every gateway endpoint through ratesvc.

``polygon-api-client`` and its renamed successor ``massive`` are pointed at
ratesvc with a token of their own (ignored); ratesvc answers from the
simulator with the service's key, and every answer matches what the
simulator itself says.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import date
from typing import Any

import massive
import polygon
import pytest

from ratesvc.app import create_app
from ratesvc.config import Settings
from ratesvc_sim import polygon_reference as reference
from ratesvc_sim.polygon import PolygonSimulator
from stocks.conftest import API_KEY
from support.servers import serve_app

CLIENTS: dict[str, Callable[..., Any]] = {
    "polygon-api-client": polygon.RESTClient,
    "massive": massive.RESTClient,
}
PAST_DAY = date(2024, 6, 27)  # a Thursday long settled


def _bar_fields(agg: Any) -> tuple[Any, ...]:
    return (agg.open, agg.high, agg.low, agg.close, agg.volume, agg.vwap, agg.timestamp)


@pytest.mark.parametrize("client_name", list(CLIENTS))
async def test_every_gateway_method_of_the_official_client(
    client_name: str, stock_settings: Settings, polygon: PolygonSimulator
) -> None:
    async with serve_app(create_app(stock_settings)) as base:
        client = CLIENTS[client_name](api_key="frontend-token", base=base, retries=0)

        def calls() -> dict[str, Any]:
            return {
                "prev": client.get_previous_close_agg("AAPL"),
                "prev_unadjusted": client.get_previous_close_agg("AAPL", adjusted=False),
                "open_close": client.get_daily_open_close_agg("MSFT", PAST_DAY.isoformat()),
                "grouped": client.get_grouped_daily_aggs(PAST_DAY.isoformat()),
                "details": client.get_ticker_details("NVDA"),
                "listed": list(client.list_tickers(market="stocks", limit=10)),
                "status": client.get_market_status(),
            }

        got = await asyncio.to_thread(calls)

    previous = polygon.previous_session()
    expected_prev = polygon.day_bar("AAPL", previous, adjusted=True)
    assert expected_prev is not None
    [prev] = got["prev"]
    assert prev.ticker == "AAPL"
    assert (prev.open, prev.close, prev.timestamp) == (
        expected_prev["o"],
        expected_prev["c"],
        expected_prev["t"],
    )
    [unadjusted] = got["prev_unadjusted"]
    assert unadjusted.close == polygon.day_bar("AAPL", previous, adjusted=False)["c"]  # type: ignore[index]

    day = polygon.day_bar("MSFT", PAST_DAY, adjusted=True)
    assert day is not None
    summary = got["open_close"]
    assert (summary.symbol, summary.from_, summary.open, summary.close, summary.volume) == (
        "MSFT",
        PAST_DAY.isoformat(),
        day["o"],
        day["c"],
        day["v"],
    )
    assert summary.pre_market is not None
    assert summary.after_hours is not None

    grouped = {agg.ticker: agg for agg in got["grouped"]}
    assert sorted(grouped) == sorted(reference.TICKERS)
    tsla = polygon.day_bar("TSLA", PAST_DAY, adjusted=True)
    assert tsla is not None
    assert _bar_fields(grouped["TSLA"]) == (
        tsla["o"], tsla["h"], tsla["l"], tsla["c"], tsla["v"], tsla["vw"], tsla["t"],
    )  # fmt: skip

    details = got["details"]
    assert (details.ticker, details.name, details.market) == ("NVDA", "Nvidia Corp", "stocks")
    assert details.share_class_shares_outstanding > 0

    # Ten per page over the whole universe: the client followed every next_url through us.
    assert [t.ticker for t in got["listed"]] == sorted(reference.TICKERS)
    assert got["status"].market in {"open", "closed", "extended-hours"}
    assert got["status"].exchanges.nasdaq in {"open", "closed", "extended-hours"}

    # Only the service's key went upstream, always as a Bearer header.
    assert polygon.calls
    assert all(call.authorization == f"Bearer {API_KEY}" for call in polygon.calls)
    assert all("apiKey" not in call.query for call in polygon.calls)


async def test_the_previous_close_of_a_watchlist_costs_one_grouped_call(
    stock_settings: Settings, polygon: PolygonSimulator
) -> None:
    watchlist = list(reference.TICKERS[:20])
    async with serve_app(create_app(stock_settings)) as base:
        client = massive.RESTClient(api_key="frontend-token", base=base, retries=0)

        def prev_closes() -> list[Any]:
            return [client.get_previous_close_agg(ticker)[0] for ticker in watchlist]

        closes = await asyncio.to_thread(prev_closes)

    previous = polygon.previous_session()
    for ticker, agg in zip(watchlist, closes, strict=True):
        bar = polygon.day_bar(ticker, previous, adjusted=True)
        assert bar is not None
        assert (agg.ticker, agg.close, agg.timestamp) == (ticker, bar["c"], bar["t"])
    assert [call.path for call in polygon.calls] == [
        f"/polygon/v2/aggs/grouped/locale/us/market/stocks/{previous.isoformat()}"
    ]
