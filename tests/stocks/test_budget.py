"""The upstream budget is shared through Redis: replicas together stay within the plan."""

from __future__ import annotations

import asyncio
import time
from collections import Counter

import pytest
from redis.asyncio import Redis

from ratesvc.stocks import keys
from ratesvc.stocks.budget import UpstreamBudget
from ratesvc.stocks.errors import UpstreamError
from ratesvc_sim.polygon import PolygonSimulator
from stocks.conftest import ServeStocks
from support.servers import eventually


async def test_budget_holds_across_two_app_instances(
    serve_stocks: ServeStocks, polygon: PolygonSimulator
) -> None:
    # Three calls per 30 s window, nobody waits: the rest must be refused, not sent.
    budget = {"polygon_calls_per_minute": 3, "polygon_budget_window_s": 30.0}
    paths = [f"/v1/stocks/aggs/T{n}/range/1/day/2023-01-01/2023-01-31" for n in range(12)]
    async with (
        serve_stocks(**budget, stocks_budget_wait_s=0) as one,
        serve_stocks(**budget, stocks_budget_wait_s=0) as two,
    ):
        started = time.monotonic()
        responses = await asyncio.gather(
            *(client.get(path) for path, client in zip(paths, [one, two] * 6, strict=True))
        )
        elapsed = time.monotonic() - started

    assert elapsed < 30
    assert polygon.call_count == 3
    assert Counter(r.status_code for r in responses) == {200: 3, 503: 9}
    for response in responses:
        if response.status_code == 503:
            assert response.json()["upstream"] == "budget"
            assert 1 <= int(response.headers["Retry-After"]) <= 30


async def test_requests_wait_for_a_slot_when_allowed_to(
    serve_stocks: ServeStocks, polygon: PolygonSimulator
) -> None:
    # Two calls per second: the third request waits for the window to move, then succeeds.
    budget = {"polygon_calls_per_minute": 2, "polygon_budget_window_s": 1.0}
    paths = [f"/v1/stocks/aggs/W{n}/range/1/day/2023-01-01/2023-01-31" for n in range(3)]
    async with serve_stocks(**budget, stocks_budget_wait_s=5.0) as client:
        responses = await asyncio.gather(*(client.get(path) for path in paths))

    assert {r.status_code for r in responses} == {200}
    times = sorted(call.at for call in polygon.calls)
    assert len(times) == 3
    # The budget spaces the acquisitions a full window apart; arrival times at the
    # simulator add the request's own delay, so under load the spread seen here can
    # be a little shorter. Without the budget all three would arrive within
    # milliseconds, so half a window still proves the third call waited.
    assert times[2] - times[0] >= 0.5


async def test_background_refreshes_leave_a_slot_for_users(redis: Redis) -> None:
    budget = UpstreamBudget(redis, calls=3, window_s=60)

    assert await budget.try_acquire_background()
    assert await budget.try_acquire_background()
    assert not await budget.try_acquire_background()  # the last slot is the users'
    await budget.acquire(max_wait_s=0)
    with pytest.raises(UpstreamError) as caught:
        await budget.acquire(max_wait_s=0)

    assert caught.value.failure.kind == "budget"
    assert caught.value.failure.retry_after_s is not None
    assert 55 < caught.value.failure.retry_after_s <= 60


async def test_a_waiting_user_goes_before_background_refreshes(redis: Redis) -> None:
    budget = UpstreamBudget(redis, calls=2, window_s=0.5)
    await budget.acquire(max_wait_s=0)
    await budget.acquire(max_wait_s=0)

    waiting = asyncio.create_task(budget.acquire(max_wait_s=5))
    await eventually(lambda: redis.exists(keys.BUDGET_WAITING))
    background_got_in = False
    while not waiting.done():
        background_got_in |= await budget.try_acquire_background()
        await asyncio.sleep(0.01)
    await waiting

    assert not background_got_in


async def test_after_a_429_nobody_calls_until_retry_after(redis: Redis) -> None:
    budget = UpstreamBudget(redis, calls=100, window_s=60)

    await budget.pause(20)

    with pytest.raises(UpstreamError) as caught:
        await budget.acquire(max_wait_s=1)
    assert caught.value.failure.retry_after_s is not None
    assert 18 < caught.value.failure.retry_after_s <= 20
    assert not await budget.try_acquire_background()
