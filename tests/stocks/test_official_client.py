"""Polygon's official Python client, unmodified, works against ratesvc."""

from __future__ import annotations

import asyncio
from datetime import date
from typing import Any

import pytest
from polygon import RESTClient
from polygon.exceptions import BadResponse

from ratesvc.app import create_app
from ratesvc.config import Settings
from ratesvc_sim.polygon import PolygonSimulator
from stocks.conftest import API_KEY
from stocks.helpers import upstream_bars
from support.servers import serve_app


def as_polygon_dict(agg: Any) -> dict[str, Any]:
    bar = {
        "v": agg.volume,
        "vw": agg.vwap,
        "o": agg.open,
        "c": agg.close,
        "h": agg.high,
        "l": agg.low,
        "t": agg.timestamp,
        "n": agg.transactions,
    }
    return {k: v for k, v in bar.items() if v is not None}


async def test_official_client_lists_and_gets_aggregates(
    stock_settings: Settings, polygon: PolygonSimulator, polygon_url: str
) -> None:
    async with serve_app(create_app(stock_settings)) as base:
        # The client must send some key; ours is its own token, which ratesvc ignores.
        client = RESTClient(api_key="frontend-token", base=base, retries=0)

        listed = await asyncio.to_thread(
            lambda: list(client.list_aggs("AAPL", 1, "hour", "2024-01-02", "2024-01-31", limit=100))
        )
        got = await asyncio.to_thread(
            client.get_aggs, "AAPL", 1, "day", date(2024, 1, 1), date(2024, 3, 31), sort="desc"
        )
        unknown = await asyncio.to_thread(
            client.get_aggs, "zzzz", 1, "day", "2024-01-01", "2024-01-31"
        )

    hours = await upstream_bars(
        polygon_url, "/v2/aggs/ticker/AAPL/range/1/hour/2024-01-02/2024-01-31", {}
    )
    days = await upstream_bars(
        polygon_url, "/v2/aggs/ticker/AAPL/range/1/day/2024-01-01/2024-03-31", {"sort": "desc"}
    )
    assert len(listed) == len(hours) > 100  # several pages, followed by the client
    assert [as_polygon_dict(a) for a in listed] == hours
    assert [as_polygon_dict(a) for a in got] == days
    assert unknown == []
    assert all(call.authorization == f"Bearer {API_KEY}" for call in polygon.calls)


async def test_official_client_gets_our_errors_and_retries_5xx(
    stock_settings: Settings, polygon: PolygonSimulator
) -> None:
    polygon.fail_next(500)
    async with serve_app(create_app(stock_settings)) as base:
        client = RESTClient(api_key="frontend-token", base=base)  # retries 502 by default
        recovered = await asyncio.to_thread(
            client.get_aggs, "AAPL", 1, "day", "2024-01-01", "2024-01-31"
        )
        with pytest.raises(BadResponse) as caught:
            await asyncio.to_thread(
                client.get_aggs, "AAPL", 1, "fortnight", "2024-01-01", "2024-01-31"
            )

    assert len(recovered) == 23
    assert [call.status for call in polygon.calls] == [500, 200]
    assert "timespan" in str(caught.value)
