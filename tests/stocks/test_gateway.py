"""The Polygon gateway's cache rules, coalescing, budget, errors and purge, over real sockets."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from datetime import date
from typing import Any
from urllib.parse import urlsplit

import httpx
import msgspec
import pytest
from redis.asyncio import Redis

from ratesvc.stocks import keys
from ratesvc.stocks.docstore import DocStore, Document
from ratesvc.stocks.purge import purge_ticker
from ratesvc.stocks.timegrid import eastern_today
from ratesvc_sim import polygon_reference as reference
from ratesvc_sim.polygon import PolygonSimulator
from stocks.conftest import API_KEY, ServeStocks

PAST = "2024-06-27"
PATHS = {
    "prev": "/v2/aggs/ticker/AAPL/prev",
    "open_close": f"/v1/open-close/AAPL/{PAST}",
    "grouped": f"/v2/aggs/grouped/locale/us/market/stocks/{PAST}",
    "ticker_details": "/v3/reference/tickers/AAPL",
    "tickers": "/v3/reference/tickers?limit=5&market=stocks",
    "market_status": "/v1/marketstatus/now",
}


def without_request_id(body: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in body.items() if k != "request_id"}


async def upstream(polygon_url: str, path: str) -> httpx.Response:
    headers = {"Authorization": f"Bearer {API_KEY}"}
    async with httpx.AsyncClient(timeout=30, headers=headers) as http:
        return await http.get(polygon_url + path)


@pytest.mark.parametrize("endpoint", list(PATHS))
async def test_a_second_ask_is_a_hit_with_the_upstreams_answer(
    endpoint: str, client: httpx.AsyncClient, polygon: PolygonSimulator, polygon_url: str
) -> None:
    first = await client.get(PATHS[endpoint])
    calls = polygon.call_count
    second = await client.get(PATHS[endpoint])
    after = polygon.call_count
    direct = await upstream(polygon_url, PATHS[endpoint])

    assert first.status_code == second.status_code == 200, first.text
    assert first.headers["X-Cache"] == "MISS"
    assert second.headers["X-Cache"] == "HIT"
    assert after == calls == 1, [c.path for c in polygon.calls]
    mine, theirs = without_request_id(second.json()), without_request_id(direct.json())
    if endpoint == "market_status":
        mine.pop("serverTime")
        theirs.pop("serverTime")
    if endpoint == "tickers":
        # The page link points back here with the same opaque cursor, never at Polygon.
        assert urlsplit(mine.pop("next_url")).query == urlsplit(theirs.pop("next_url")).query
    assert mine == theirs


async def test_paths_not_declared_are_404_json_without_an_upstream_call(
    client: httpx.AsyncClient, polygon: PolygonSimulator
) -> None:
    for path in (
        "/v2/snapshot/locale/us/markets/stocks/tickers",
        "/v3/reference/dividends",
        "/v2/aggs/grouped/locale/global/market/crypto/2024-06-27",
        "/v1/marketstatus/upcoming",
        "/v3/reference/tickers/AAPL/events",
    ):
        response = await client.get(path)
        assert response.status_code == 404, path
        assert response.headers["content-type"].startswith("application/json")
    assert polygon.call_count == 0


async def test_bad_input_is_400_before_any_upstream_call(
    client: httpx.AsyncClient, polygon: PolygonSimulator
) -> None:
    for path, params in (
        ("/v1/open-close/AAPL/2024-13-01", {}),
        ("/v1/open-close/AAPL/yesterday", {}),
        ("/v2/aggs/ticker/AA PL/prev", {}),
        ("/v2/aggs/ticker/AAPL/prev", {"adjusted": "maybe"}),
        ("/v3/reference/tickers", {"limit": "0"}),
        ("/v3/reference/tickers", {"order": "sideways"}),
        ("/v2/aggs/grouped/locale/us/market/stocks/2024-02-30", {}),
    ):
        response = await client.get(path, params=params)
        assert response.status_code == 400, (path, params, response.text)
        assert "error" in response.json()
    assert polygon.call_count == 0


async def test_empty_repeated_and_odd_case_parameters(
    client: httpx.AsyncClient, polygon: PolygonSimulator
) -> None:
    # An empty value is no value; the first of repeated values counts; booleans in any
    # case; Polygon's default asked for explicitly is the same answer as left out.
    base = await client.get("/v1/open-close/AAPL/2024-06-27")
    same = [
        await client.get("/v1/open-close/AAPL/2024-06-27?adjusted="),
        await client.get("/v1/open-close/AAPL/2024-06-27?adjusted=TRUE"),
    ]
    unadjusted = await client.get("/v1/open-close/AAPL/2024-06-27?adjusted=False&adjusted=true")

    assert base.status_code == 200
    assert [r.headers["X-Cache"] for r in same] == ["HIT", "HIT"]
    assert [r.json() for r in same] == [base.json(), base.json()]
    assert unadjusted.headers["X-Cache"] == "MISS"
    assert polygon.calls[-1].query == {"adjusted": "false"}


async def test_the_clients_key_is_ignored_and_never_forwarded(
    client: httpx.AsyncClient, polygon: PolygonSimulator
) -> None:
    for path in PATHS.values():
        sep = "&" if "?" in path else "?"
        response = await client.get(
            f"{path}{sep}apiKey=client-secret",
            headers={"Authorization": "Bearer client-secret"},
        )
        assert response.status_code == 200, response.text
        assert "client-secret" not in response.text
    assert polygon.calls
    for call in polygon.calls:
        assert call.authorization == f"Bearer {API_KEY}"
        assert "apiKey" not in call.query


async def test_list_tickers_pages_point_back_here_without_a_key(
    client: httpx.AsyncClient, polygon: PolygonSimulator
) -> None:
    seen: list[str] = []
    response = await client.get("/v3/reference/tickers", params={"limit": "7"})
    while True:
        assert response.status_code == 200, response.text
        body = response.json()
        seen += [row["ticker"] for row in body["results"]]
        if "next_url" not in body:
            break
        link = urlsplit(body["next_url"])
        assert f"{link.scheme}://{link.netloc}" == str(client.base_url).rstrip("/")
        assert "apiKey" not in link.query
        assert link.path == "/v3/reference/tickers"
        response = await client.get(f"{link.path}?{link.query}")
    assert seen == sorted(reference.TICKERS)
    calls = polygon.call_count
    # The same walk again is all hits: every page is cached under its URL.
    again = await client.get("/v3/reference/tickers", params={"limit": "7"})
    assert again.headers["X-Cache"] == "HIT"
    assert polygon.call_count == calls


async def test_polygons_404_is_passed_on_and_cached(
    client: httpx.AsyncClient, polygon: PolygonSimulator
) -> None:
    first = await client.get("/v3/reference/tickers/ZZZZ")
    second = await client.get("/v3/reference/tickers/ZZZZ")
    weekend = await client.get("/v1/open-close/AAPL/2024-06-29")

    assert first.status_code == second.status_code == weekend.status_code == 404
    assert first.json()["status"] == "NOT_FOUND"
    assert [first.headers["X-Cache"], second.headers["X-Cache"]] == ["MISS", "HIT"]
    assert polygon.call_count == 2


async def test_concurrent_identical_requests_make_one_call(
    client: httpx.AsyncClient, polygon: PolygonSimulator
) -> None:
    polygon.delay_s = 0.3
    responses = await asyncio.gather(*(client.get("/v3/reference/tickers/MSFT") for _ in range(8)))
    assert {r.status_code for r in responses} == {200}
    assert Counter(r.headers["X-Cache"] for r in responses) == {"MISS": 1, "COALESCED": 7}
    assert polygon.call_count == 1


async def test_two_replicas_make_one_call_between_them(
    serve_stocks: ServeStocks, polygon: PolygonSimulator
) -> None:
    polygon.delay_s = 0.3
    async with serve_stocks() as one, serve_stocks() as two:
        responses = await asyncio.gather(
            *(
                http.get("/v2/aggs/grouped/locale/us/market/stocks/2024-06-26")
                for http in [one, two] * 4
            )
        )
    assert {r.status_code for r in responses} == {200}
    assert Counter(r.headers["X-Cache"] for r in responses) == {"MISS": 1, "COALESCED": 7}
    assert polygon.call_count == 1


async def test_a_past_day_is_kept_forever_today_briefly(
    client: httpx.AsyncClient, polygon: PolygonSimulator, redis: Redis
) -> None:
    today = eastern_today(int(time.time() * 1000)).isoformat()
    await client.get(f"/v1/open-close/AAPL/{PAST}")
    await client.get(f"/v2/aggs/grouped/locale/us/market/stocks/{today}")
    await client.get("/v1/marketstatus/now")

    assert await redis.pttl(keys.doc_key(f"AAPL|open_close|{PAST}")) == -1  # no expiry
    stored = await DocStore(redis).load(f"@grouped|{today}")
    assert stored is not None
    assert stored.fresh_until_ms - stored.fetched_ms <= 60_000
    status = await DocStore(redis).load("@market_status|")
    assert status is not None
    assert status.fresh_until_ms - status.fetched_ms == 30_000


async def test_stale_answer_when_polygon_fails(
    client: httpx.AsyncClient, polygon: PolygonSimulator, redis: Redis
) -> None:
    fresh = await client.get("/v3/reference/tickers/NVDA")
    docs = DocStore(redis)
    name = "NVDA|ticker_details|"
    stored = await docs.load(name)
    assert stored is not None
    # As if a day had passed: the answer is past its freshness but still kept.
    await docs.save(name, Document(stored.fetched_ms, stored.fetched_ms, 200, stored.body))
    polygon.fail_next(500)
    stale = await client.get("/v3/reference/tickers/NVDA")
    polygon.fail_next(500)
    missing = await client.get("/v3/reference/tickers/AMD")

    assert stale.status_code == 200
    assert stale.headers["X-Cache"] == "STALE"
    assert "110" in stale.headers["Warning"]
    assert stale.json() == fresh.json()
    assert missing.status_code == 502
    assert missing.headers["X-Cache"] == "MISS"
    assert missing.json()["upstream"] == "unavailable"


async def test_polygons_429_pauses_every_endpoint(
    serve_stocks: ServeStocks, polygon: PolygonSimulator
) -> None:
    polygon.fail_next(429, retry_after=20)
    async with serve_stocks(stocks_budget_wait_s=0) as client:
        limited = await client.get("/v1/marketstatus/now")
        paused = await client.get("/v3/reference/tickers/AAPL")
        bars = await client.get("/v1/stocks/aggs/AAPL/range/1/day/2023-01-01/2023-01-31")

    assert limited.status_code == 503
    assert 19 <= int(limited.headers["Retry-After"]) <= 20
    for response in (paused, bars):
        assert response.status_code == 503
        assert response.json()["upstream"] == "budget"
        assert int(response.headers["Retry-After"]) >= 1
    assert polygon.call_count == 1  # nothing was sent during the pause


async def test_previous_close_from_todays_day_bars_makes_no_call(
    serve_stocks: ServeStocks, polygon: PolygonSimulator, polygon_url: str
) -> None:
    today = eastern_today(int(time.time() * 1000))
    if polygon.previous_session().year != today.year:
        pytest.skip("early January: the previous session is in last year's chunk")
    async with serve_stocks(stocks_settle_s=0) as client:
        chart = await client.get(
            f"/v2/aggs/ticker/TSLA/range/1/day/{date(today.year, 1, 1)}/{today}"
        )
        calls = polygon.call_count
        prev = await client.get("/v2/aggs/ticker/TSLA/prev")
        after = polygon.call_count
    direct = await upstream(polygon_url, "/v2/aggs/ticker/TSLA/prev")

    assert chart.status_code == prev.status_code == 200
    assert prev.headers["X-Cache"] == "HIT"
    assert after == calls
    assert without_request_id(prev.json()) == without_request_id(direct.json())


async def test_a_ticker_missing_from_the_grouped_bars_asks_polygons_prev(
    client: httpx.AsyncClient, polygon: PolygonSimulator, polygon_url: str
) -> None:
    # ZZZZ is not in the simulator's universe: no grouped bar, so /prev is asked.
    answer = await client.get("/v2/aggs/ticker/ZZZZ/prev")
    again = await client.get("/v2/aggs/ticker/ZZZZ/prev")
    direct = await upstream(polygon_url, "/v2/aggs/ticker/ZZZZ/prev")

    assert answer.status_code == 200
    assert without_request_id(answer.json()) == without_request_id(direct.json())
    assert [call.path.rsplit("/", 1)[-1] for call in polygon.calls[:2]] == [
        polygon.previous_session().isoformat(),
        "prev",
    ]
    assert again.headers["X-Cache"] == "HIT"


async def test_free_plan_cold_watchlist_is_answered_within_the_budget(
    serve_stocks: ServeStocks, polygon: PolygonSimulator
) -> None:
    # Polygon's free plan: 5 calls a minute, enforced by the simulator too.
    polygon.calls_per_minute = 5
    watchlist = reference.TICKERS[:20]
    plan = {"polygon_calls_per_minute": 5, "polygon_budget_window_s": 60.0}
    async with serve_stocks(**plan, stocks_budget_wait_s=5.0) as client:
        started = time.monotonic()
        responses = await asyncio.gather(
            *(client.get(f"/v2/aggs/ticker/{t}/prev") for t in watchlist),
            client.get(f"/v3/reference/tickers/{watchlist[0]}"),
            client.get("/v1/marketstatus/now"),
        )
        elapsed = time.monotonic() - started
        # Details of every ticker on the page would need 19 more calls: past the plan,
        # the client is told when to come back instead of waiting minutes.
        details = await asyncio.gather(
            *(client.get(f"/v3/reference/tickers/{t}") for t in watchlist[1:])
        )

    assert {r.status_code for r in responses} == {200}
    assert elapsed < 5
    assert polygon.call_count - sum(1 for r in details if r.status_code == 200) == 3
    refused = [r for r in details if r.status_code != 200]
    assert len(refused) == 20 - 1 - 2  # two slots were left in the first minute
    for response in refused:
        assert response.status_code == 503
        assert response.json()["upstream"] == "budget"
        assert 1 <= int(response.headers["Retry-After"]) <= 60
    assert all(call.status == 200 for call in polygon.calls)  # never a 429 from Polygon


async def test_purge_clears_a_tickers_gateway_answers(
    client: httpx.AsyncClient, polygon: PolygonSimulator, redis: Redis
) -> None:
    for path in (*PATHS.values(), "/v3/reference/tickers/MSFT"):
        assert (await client.get(path)).status_code == 200
    await purge_ticker(redis, "AAPL")

    names = sorted([k.decode() async for k in redis.scan_iter(match=keys.DOC_PREFIX + "*")])
    left = [name.removeprefix(keys.DOC_PREFIX) for name in names]
    assert "MSFT|ticker_details|" in left
    assert not [name for name in left if name.startswith(("AAPL|", "@grouped|"))]
    assert [k async for k in redis.scan_iter(match=keys.GROUPED_INDEX_PREFIX + "*")] == []
    calls = polygon.call_count
    again = await client.get("/v3/reference/tickers/AAPL")
    assert again.headers["X-Cache"] == "MISS"
    assert polygon.call_count == calls + 1


async def test_metrics_carry_the_endpoint(serve_stocks: ServeStocks) -> None:
    async with serve_stocks() as client:  # counters from zero: not the module's app
        await client.get("/v3/reference/tickers/AAPL")
        await client.get("/v3/reference/tickers/AAPL")
        text = (await client.get("/metrics")).text
        health = await client.get("/v1/health")

    assert 'ratesvc_stocks_upstream_calls_total{endpoint="ticker_details",outcome="ok"} 1.0' in text
    assert 'ratesvc_stocks_answers_total{cache="HIT",endpoint="ticker_details"} 1.0' in text
    assert API_KEY not in text
    assert msgspec.json.decode(health.content)


async def test_purge_adjusted_only_keeps_unadjusted_answers(
    client: httpx.AsyncClient, redis: Redis
) -> None:
    for adjusted in ("true", "false"):
        for path in (
            f"/v1/open-close/AAPL/{PAST}",
            f"/v2/aggs/grouped/locale/us/market/stocks/{PAST}",
        ):
            response = await client.get(path, params={"adjusted": adjusted})
            assert response.status_code == 200
    await purge_ticker(redis, "AAPL", adjusted_only=True)

    left = sorted([k.decode() async for k in redis.scan_iter(match=keys.DOC_PREFIX + "*")])
    assert [name.removeprefix(keys.DOC_PREFIX) for name in left] == [
        f"@grouped|{PAST}?adjusted=false",
        f"AAPL|open_close|{PAST}?adjusted=false",
    ]
