"""One answer per route: the raw ASGI layers and the documented handlers give the same bytes.

Two apps on the same Redis and simulator, one with the stock routes as
served (raw layers) and one with the documented handlers only.  Every
contract case is asked of both, built from Redis and then again (kept by
the process), and must come back identical: status, headers and body.  Only
what differs between any two answers is set aside: the request id, new per
answer.
"""

from __future__ import annotations

import re
from datetime import date

import httpx
import msgspec
from redis.asyncio import Redis

from ratesvc.app import create_app
from ratesvc.config import Settings
from ratesvc.stocks.cache import BarStore
from ratesvc.stocks.chunk import CachedChunk
from ratesvc.stocks.models import SeriesKey
from ratesvc.stocks.plugin import StocksPlugin
from ratesvc.stocks.purge import purge_ticker
from ratesvc_sim.polygon import PolygonSimulator
from support.apps import app_client

PAST = "2024-06-27"
AGGS = "/v1/stocks/aggs/AAPL/range/1/day/2024-01-02/2024-03-28"
CASES = [
    AGGS,
    AGGS + "?sort=desc",
    AGGS + "?limit=7",  # paged: next_url back here
    AGGS + "?limit=7&cursor=1704757200000",
    AGGS + "?adjusted=false&sort=asc&limit=50000",
    "/v2/aggs/ticker/AAPL/range/1/hour/2024-02-05/2024-02-16?limit=100",
    "/v2/aggs/ticker/MSFT/range/5/minute/1717416000000/1717434000000",
    "/v1/stocks/aggs/AAPL/range/1/week/2023-01-01/2024-06-28",
    "/v1/stocks/aggs/AAPL/range/1/day/2024-06-29/2024-06-30",  # a weekend: no bars
    "/v1/stocks/aggs/AAPL/range/1/day/2099-01-02/2099-01-03",  # the future: no call
    "/v1/stocks/aggs/AAPL/range/1/fortnight/2024-01-02/2024-01-31",
    "/v1/stocks/aggs/AA$PL/range/1/day/2024-01-02/2024-01-31",
    "/v1/stocks/aggs/AAPL/range/0/day/2024-01-02/2024-01-31",
    "/v1/stocks/aggs/AAPL/range/1/day/2024-02-02/2024-01-31",
    AGGS + "?limit=0",
    AGGS + "?sort=up",
    AGGS + "?cursor=abc",
    "/v2/aggs/ticker/AAPL/prev",
    "/v2/aggs/ticker/MSFT/prev?adjusted=false",
    f"/v1/open-close/AAPL/{PAST}",
    f"/v1/open-close/AAPL/{PAST}?adjusted=FALSE",
    "/v1/open-close/AAPL/2024-06-29",  # Polygon's own 404, passed on
    f"/v2/aggs/grouped/locale/us/market/stocks/{PAST}",
    f"/v2/aggs/grouped/locale/us/market/stocks/{PAST}?include_otc=true",
    "/v3/reference/tickers/AAPL",
    "/v3/reference/tickers?limit=5&market=stocks",  # paged: next_url back here
    "/v3/reference/tickers?limit=5&market=stocks&apiKey=client-secret",
    "/v1/marketstatus/now",
    "/v1/open-close/AAPL/2024-13-01",
    "/v2/aggs/grouped/locale/us/market/stocks/yesterday",
    "/v3/reference/tickers?limit=5000",
    "/v3/reference/tickers?order=sideways",
    "/v2/aggs/ticker/AAPL/prev?adjusted=maybe",
]
PER_APP = {"ratelimit-limit", "ratelimit-remaining", "ratelimit-reset"}
"""Set outside the route, by each app's rate limiter."""
REQUEST_ID = re.compile(rb'"request_id":"[^"]*"')


def comparable(response: httpx.Response) -> tuple[int, list[tuple[str, str]], bytes]:
    headers = sorted((k, v) for k, v in response.headers.items() if k not in PER_APP)
    return response.status_code, headers, REQUEST_ID.sub(b'"request_id":"-"', response.content)


async def test_raw_layers_and_handlers_answer_byte_for_byte(
    stock_settings: Settings, polygon: PolygonSimulator
) -> None:
    async with (
        app_client(create_app(stock_settings, plugins=[StocksPlugin()])) as raw,
        app_client(create_app(stock_settings, plugins=[StocksPlugin(raw=False)])) as handler,
    ):
        statuses, caches = set(), set()
        for path in CASES:
            await raw.get(path)  # fetched: both apps then answer from the shared cache
            for _ in range(2):  # built from Redis, then kept by the process
                fast, slow = await raw.get(path), await handler.get(path)
                assert comparable(fast) == comparable(slow), path
                statuses.add(fast.status_code)
                caches.add(fast.headers.get("x-cache"))

        # Polygon's trouble, as each form of the route tells it.
        for path in (
            "/v1/stocks/aggs/NFLX/range/1/day/2023-01-01/2023-03-31",
            "/v3/reference/tickers/NFLX",
        ):
            polygon.fail_next(500)
            fast = await raw.get(path)
            polygon.fail_next(500)
            slow = await handler.get(path.replace("NFLX", "AMZN"))
            assert comparable(fast) == comparable(slow), path
            statuses.add(fast.status_code)
    assert statuses == {200, 400, 404, 502}
    assert caches == {"HIT", "MISS", None}  # MISS: a bad gateway query; None: a bad aggs one


async def test_a_kept_answer_follows_every_write_and_purge(
    stock_settings: Settings, redis: Redis
) -> None:
    series = SeriesKey(ticker="AAPL", multiplier=1, timespan="day", adjusted=True)
    async with app_client(create_app(stock_settings, plugins=[StocksPlugin()])) as client:
        first = await client.get(AGGS)
        kept = [await client.get(AGGS) for _ in range(2)]
        assert first.status_code == 200, first.text
        assert [r.headers["x-cache"] for r in kept] == ["HIT", "HIT"]
        assert kept[0].json()["results"] == kept[1].json()["results"] == first.json()["results"]
        assert "ratesvc_stocks_kept_answers 1.0" in (await client.get("/metrics")).text

        # Another replica rewrites the chunk (a refetch after a split, say).
        store = BarStore(redis, open_ttl_s=60, settle_s=3600, adjusted_max_age_s=7 * 86400)
        [stored] = await store.load(series, [date(2024, 1, 1)])
        assert stored is not None
        bars = [msgspec.structs.replace(bar, c=1.0) for bar in stored.bars()]
        rewrite = CachedChunk.from_bars(stored.fetched_ms, stored.status, bars)
        await store.save(series, {date(2024, 1, 1): rewrite})
        rewritten = await client.get(AGGS)
        assert rewritten.headers["x-cache"] == "HIT"
        assert {bar["c"] for bar in rewritten.json()["results"]} == {1.0}

        # An operator purges the ticker: the next answer is fetched again.
        assert await purge_ticker(redis, "AAPL") > 0
        after = await client.get(AGGS)
        assert after.headers["x-cache"] == "MISS"
        assert after.json()["results"] == first.json()["results"]
