"""Fewer upstream calls: range-aware chunks, coalescing, stale-on-error, refresher, purge."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Iterator
from datetime import date

import httpx
import pytest
from redis.asyncio import Redis

from ratesvc.cli import main
from ratesvc.log import configure_logging
from ratesvc.stocks import keys
from ratesvc.stocks.timegrid import eastern_today
from ratesvc_sim.polygon import PolygonSimulator
from stocks.conftest import ServeStocks
from support.servers import eventually

MINUTES = "/v1/stocks/aggs/AAPL/range/1/minute"


@pytest.fixture
def restore_logging() -> Iterator[None]:
    """The CLI configures logging for itself; put the test suite's configuration back."""
    yield
    configure_logging("DEBUG", json=True)


@pytest.fixture
def cli_on_test_redis(
    redis_url: str, monkeypatch: pytest.MonkeyPatch, restore_logging: None
) -> None:
    monkeypatch.setenv("RATESVC_REDIS_URL", redis_url)


async def test_overlapping_windows_fetch_only_the_gap(
    client: httpx.AsyncClient, polygon: PolygonSimulator
) -> None:
    first = await client.get(f"{MINUTES}/2024-04-02/2024-04-04", params={"limit": "50000"})
    inside = await client.get(f"{MINUTES}/2024-04-01/2024-04-05", params={"limit": "50000"})
    sliding = await client.get(f"{MINUTES}/2024-04-03/2024-04-16", params={"limit": "50000"})

    assert [r.headers["X-Cache"] for r in (first, inside, sliding)] == ["MISS", "HIT", "PARTIAL"]
    assert [c.path.rsplit("/", 2)[-2:] for c in polygon.calls] == [
        # The missing days, widened to their ISO week (read-ahead within one call) ...
        ["2024-04-01", "2024-04-07"],
        # ... then only the gap, to the end of its week, in one call.
        ["2024-04-08", "2024-04-21"],
    ]
    assert sliding.json()["resultsCount"] == 10 * 16 * 60  # 04-03..04-16: 10 weekdays


async def test_read_ahead_never_adds_a_call_nor_refetches(
    client: httpx.AsyncClient, polygon: PolygonSimulator
) -> None:
    seconds = "/v1/stocks/aggs/AAPL/range/30/second"  # day chunks, no read-ahead
    await client.get(f"{seconds}/2024-04-03/2024-04-03")
    await client.get(f"{seconds}/2024-04-05/2024-04-05")
    polygon.calls.clear()

    response = await client.get(f"{seconds}/2024-04-02/2024-04-06", params={"limit": "50000"})

    assert response.headers["X-Cache"] == "PARTIAL"
    assert sorted(c.path.rsplit("/", 2)[-2] for c in polygon.calls) == [
        "2024-04-02",
        "2024-04-04",
        "2024-04-06",
    ]
    # Minute bars read ahead within their week, but only next to what is fetched anyway.
    await client.get(f"{MINUTES}/2024-04-10/2024-04-10")  # fetches the week 04-08..04-14
    await client.get(f"{MINUTES}/2024-04-16/2024-04-16")  # fetches 04-15..04-21
    polygon.calls.clear()
    await client.get(f"{MINUTES}/2024-04-05/2024-04-22", params={"limit": "50000"})
    assert [c.path.rsplit("/", 2)[-2:] for c in polygon.calls] == [
        ["2024-04-01", "2024-04-07"],
        ["2024-04-22", "2024-04-28"],
    ]


async def test_fifty_concurrent_cold_requests_make_one_upstream_call(
    client: httpx.AsyncClient, polygon: PolygonSimulator
) -> None:
    polygon.delay_s = 0.3  # the first call is still running when the others arrive
    path = "/v1/stocks/aggs/GOOG/range/1/hour/2024-01-01/2024-01-31"

    responses = await asyncio.gather(*(client.get(path) for _ in range(50)))

    assert polygon.call_count == 1
    assert {r.status_code for r in responses} == {200}
    assert len({r.content.split(b'"request_id"')[0] for r in responses}) == 1
    statuses = Counter(r.headers["X-Cache"] for r in responses)
    assert statuses["MISS"] == 1
    assert statuses["MISS"] + statuses["COALESCED"] + statuses["HIT"] == 50
    assert statuses["COALESCED"] >= 40


async def test_coalescing_works_across_app_instances(
    serve_stocks: ServeStocks, polygon: PolygonSimulator
) -> None:
    polygon.delay_s = 0.3
    path = "/v2/aggs/ticker/GOOG/range/1/day/2020-01-01/2020-12-31"
    async with serve_stocks() as one, serve_stocks() as two:
        responses = await asyncio.gather(*(c.get(path) for c in (one, two) * 10))

    assert polygon.call_count == 1
    assert {r.status_code for r in responses} == {200}
    assert len({r.json()["resultsCount"] for r in responses}) == 1


async def test_waiters_get_the_failure_of_the_call_they_waited_for(
    client: httpx.AsyncClient, polygon: PolygonSimulator
) -> None:
    polygon.delay_s = 0.3
    polygon.fail_next(500)
    path = "/v1/stocks/aggs/GOOG/range/1/day/2021-01-01/2021-12-31"

    responses = await asyncio.gather(*(client.get(path) for _ in range(10)))

    assert polygon.call_count == 1
    assert {r.status_code for r in responses} == {502}


async def test_stale_bars_are_served_when_polygon_fails(
    serve_stocks: ServeStocks, polygon: PolygonSimulator
) -> None:
    path = "/v1/stocks/aggs/META/range/1/day/2022-01-01/2022-12-31"
    # Adjusted bars older than this are refetched: here, always.
    async with serve_stocks(polygon_adjusted_max_age_s=0.001) as client:
        fresh = await client.get(path)
        polygon.fail_next(500)
        stale = await client.get(path)
        polygon.fail_next(429, retry_after=7)
        limited = await client.get(path)
        refreshed = await client.get(path)

    assert fresh.headers["X-Cache"] == "MISS"
    for response in (stale, limited):
        assert response.status_code == 200
        assert response.headers["X-Cache"] == "STALE"
        assert response.headers["Warning"].startswith("110")
        assert response.json()["results"] == fresh.json()["results"]
    # After a 429 the budget pauses for Retry-After: stale again, without a call.
    assert refreshed.headers["X-Cache"] == "STALE"
    assert polygon.call_count == 3


async def test_closed_unadjusted_bars_do_not_expire(
    serve_stocks: ServeStocks, polygon: PolygonSimulator
) -> None:
    path = "/v1/stocks/aggs/META/range/1/day/2022-01-01/2022-12-31"
    async with serve_stocks(polygon_adjusted_max_age_s=0.001, stocks_open_ttl_s=0.001) as client:
        await client.get(path, params={"adjusted": "false"})
        again = await client.get(path, params={"adjusted": "false"})

    assert again.headers["X-Cache"] == "HIT"
    assert polygon.call_count == 1


async def test_open_session_is_refetched_after_its_ttl(
    serve_stocks: ServeStocks, polygon: PolygonSimulator
) -> None:
    today = eastern_today(int(time.time() * 1000)).isoformat()
    path = f"/v1/stocks/aggs/META/range/1/minute/{today}/{today}"
    async with serve_stocks(stocks_open_ttl_s=0.2) as client:
        await client.get(path)
        soon = await client.get(path)
        later = await eventually(
            lambda: client.get(path), lambda r: r.headers["X-Cache"] == "MISS", timeout_s=5
        )

    assert soon.headers["X-Cache"] == "HIT"
    assert later.status_code == 200
    assert polygon.call_count == 2


async def test_refresher_keeps_viewed_open_sessions_warm(
    serve_stocks: ServeStocks, polygon: PolygonSimulator
) -> None:
    today = eastern_today(int(time.time() * 1000)).isoformat()
    path = f"/v1/stocks/aggs/AMZN/range/5/minute/{today}/{today}"

    def today_calls() -> list[str]:
        return [c.path for c in polygon.calls if today in c.path]

    async with serve_stocks(stocks_open_ttl_s=0.5, stocks_refresh_interval_s=0.05) as client:
        await client.get(path)
        # No user asks again, yet Polygon is asked for today's chunk again and again.
        # (The first refresh can win the race for today's chunk against the request
        # that made the series recent; the request then fetches yesterday alone, its
        # read-ahead, so only calls for today are counted.)
        await eventually(lambda: asyncio.sleep(0, len(today_calls())), lambda n: n >= 3)
        answer = await client.get(path)
        metrics = (await client.get("/metrics")).text

    assert len(today_calls()) >= 3, [c.path for c in polygon.calls]
    assert answer.headers["X-Cache"] == "HIT"
    assert "ratesvc_stocks_background_refreshes_total" in metrics


async def test_metrics_count_calls_hits_misses_and_coalesced_waits(
    serve_stocks: ServeStocks, polygon: PolygonSimulator
) -> None:
    polygon.delay_s = 0.2
    path = "/v1/stocks/aggs/ORCL/range/1/day/2023-01-01/2023-06-30"
    async with serve_stocks() as client:  # counters from zero: not the module's app
        await asyncio.gather(*(client.get(path) for _ in range(5)))
        await client.get(path)
        text = (await client.get("/metrics")).text

    assert 'ratesvc_stocks_upstream_calls_total{endpoint="aggs",outcome="ok"} 1.0' in text
    assert "ratesvc_stocks_cache_hits_total 1.0" in text
    assert "ratesvc_stocks_cache_misses_total 1.0" in text
    assert "ratesvc_stocks_coalesced_waits_total 4.0" in text
    assert 'ratesvc_stocks_answers_total{cache="COALESCED",endpoint="aggs"} 4.0' in text


@pytest.mark.parametrize("adjusted_only", [False, True])
@pytest.mark.usefixtures("cli_on_test_redis")
async def test_purge_forgets_a_tickers_bars(
    client: httpx.AsyncClient, polygon: PolygonSimulator, redis: Redis, adjusted_only: bool
) -> None:
    for ticker in ("AAPL", "MSFT"):
        for adjusted in ("true", "false"):
            await client.get(
                f"/v1/stocks/aggs/{ticker}/range/1/day/2023-01-01/2023-01-31",
                params={"adjusted": adjusted},
            )
    argv = ["purge", "AAPL", *(["--adjusted-only"] if adjusted_only else [])]
    assert await asyncio.to_thread(main, argv) == 0

    left = sorted([k.decode() async for k in redis.scan_iter(match=keys.BARS_PREFIX + "*")])
    kept_aapl = [keys.bars_key("AAPL|1|day|u")] if adjusted_only else []
    assert left == sorted(
        [*kept_aapl, keys.bars_key("MSFT|1|day|a"), keys.bars_key("MSFT|1|day|u")]
    )
    calls = polygon.call_count
    again = await client.get("/v1/stocks/aggs/AAPL/range/1/day/2023-01-01/2023-01-31")
    assert again.headers["X-Cache"] == "MISS"
    assert polygon.call_count == calls + 1


@pytest.mark.usefixtures("restore_logging")
def test_purge_needs_the_redis_url(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("RATESVC_REDIS_URL", raising=False)
    monkeypatch.chdir("/")  # no .env here

    assert main(["purge", "AAPL"]) == 2
    assert "RATESVC_REDIS_URL" in capsys.readouterr().err


def test_dates_are_eastern() -> None:
    # 2024-01-02 03:00Z is still 2024-01-01 in New York.
    assert eastern_today(1704164400000) == date(2024, 1, 1)
