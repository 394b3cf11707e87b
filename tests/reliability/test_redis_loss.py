"""State Redis holds and PostgreSQL backs comes back by itself after Redis lost it.

Redis is restarted empty on the same port (SIGKILL, no persistence) under
running replicas, or a key is deleted behind the service's back.
"""

from __future__ import annotations

import functools
import io
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack
from pathlib import Path

import asyncpg
import httpx
import msgspec
import pytest
from redis.asyncio import Redis

from events.conftest import db_counts, event, events_client, events_settings, redis_counts
from ratesvc.app import create_app
from ratesvc.config import Settings
from ratesvc.courses import keys as courses_keys
from ratesvc.embedded import EmbeddedRedis
from ratesvc.events import keys as event_keys
from ratesvc.stocks import keys as stocks_keys
from ratesvc.stocks.budget import UpstreamBudget
from ratesvc.stocks.errors import UpstreamError
from support.servers import eventually, serve_app

from .conftest import Simulated, log_events

__all__ = ["events_settings"]  # the fixture, for this module

BACK_WITHIN_S = 5.0
SIGNUPS = 999


@pytest.fixture
async def own_redis(tmp_path: Path) -> AsyncIterator[EmbeddedRedis]:
    """A Redis of the test's own, so it can be killed and restarted empty."""
    server = EmbeddedRedis(tmp_path / "redis", persistent=False).start()
    yield server
    server.stop()


def _count_is(expected: int) -> Callable[[httpx.Response], bool]:
    def accept(response: httpx.Response) -> bool:
        return response.status_code == 200 and response.json()["count"] == expected

    return accept


@pytest.mark.slow
async def test_counts_are_right_again_after_redis_restarted_empty(
    events_settings: Settings, db: asyncpg.Connection, own_redis: EmbeddedRedis
) -> None:
    settings = msgspec.structs.replace(events_settings, redis_url=own_redis.url)
    async with AsyncExitStack() as stack:
        replicas = [await stack.enter_async_context(events_client(settings)) for _ in range(2)]
        signups = [event("signup", user_id=i) for i in range(SIGNUPS)]
        assert (await replicas[0].post("/v1/events", json=signups)).status_code == 202
        for replica in replicas:
            await eventually(functools.partial(replica.get, "/v1/stats/signup"), _count_is(SIGNUPS))

        port = own_redis.port
        own_redis.kill()
        own_redis.start(port=port)  # empty: no persistence

        for replica in replicas:
            await eventually(
                functools.partial(replica.get, "/v1/stats/signup"),
                _count_is(SIGNUPS),
                timeout_s=BACK_WITHIN_S,
            )
            await eventually(functools.partial(replica.get, "/v1/stats/never-seen"), _count_is(0))
        # New events after the loss count on top of what PostgreSQL already held.
        # (a pooled connection broken by the restart may answer one 503 first)
        await eventually(
            lambda: replicas[1].post("/v1/events", json=event("signup", event_id="after")),
            lambda r: r.status_code == 202,
        )
        await eventually(lambda: replicas[0].get("/v1/stats/signup"), _count_is(SIGNUPS + 1))
        redis = Redis.from_url(own_redis.url)
        try:
            await eventually(lambda: redis_counts(redis), lambda c: c == {"signup": SIGNUPS + 1})
        finally:
            await redis.aclose()
    assert await db_counts(db) == {"signup": SIGNUPS + 1}


async def test_a_deleted_counts_key_is_answered_from_postgres_and_rebuilt(
    events_settings: Settings, redis: Redis, db: asyncpg.Connection
) -> None:
    async with events_client(events_settings) as client:
        batch = [event("login"), event("login"), event("logout")]
        assert (await client.post("/v1/events", json=batch)).status_code == 202
        await eventually(lambda: client.get("/v1/stats/login"), _count_is(2))

        await redis.delete(event_keys.COUNTS)
        assert (await client.get("/v1/stats/login")).json()["count"] == 2  # at once
        assert (await client.get("/v1/stats/logout")).json()["count"] == 1
        await eventually(
            lambda: redis_counts(redis),
            lambda c: c == {"login": 2, "logout": 1},
            timeout_s=BACK_WITHIN_S,
        )
    assert await db_counts(db) == {"login": 2, "logout": 1}


def _cross_rate_answered(response: httpx.Response) -> bool:
    """BTC-RUB needs Binance's BTCUSDT and CoinGecko's USD-RUB legs, read from Redis."""
    return response.status_code == 200 and len(response.json()["courses"]) == 1


@pytest.mark.parametrize("upstreams", ["answering", "down"])
async def test_latest_quotes_are_written_back_when_redis_lost_them(
    courses_settings: Settings, simulated: Simulated, redis: Redis, upstreams: str
) -> None:
    # CoinGecko polled once a minute, as in production: its quotes must come back
    # from the lease holder's memory, not from the next poll.
    settings = msgspec.structs.replace(courses_settings, coingecko_poll_interval_s=60.0)
    cross = {"direction": "BTC-RUB", "exchanger": "binance"}
    async with (
        serve_app(create_app(settings)) as base,
        httpx.AsyncClient(base_url=base) as client,
    ):
        await eventually(lambda: client.get("/v1/courses", params=cross), _cross_rate_answered)
        polled = set(await redis.hkeys(courses_keys.QUOTES))
        if upstreams == "down":  # no new quote will arrive to write: the old ones must
            simulated.upstreams.binance.set_mode("refuse")
            await simulated.upstreams.binance.drop_all()
            simulated.upstreams.coingecko.set_mode("error")

        await redis.delete(courses_keys.QUOTES)
        await eventually(
            lambda: redis.hkeys(courses_keys.QUOTES),
            lambda fields: set(fields) >= polled,
            timeout_s=BACK_WITHIN_S,
        )
        answer = await client.get("/v1/courses", params=cross)
        assert _cross_rate_answered(answer), answer.text
    assert b"coingecko|tether/rub" in polled


async def test_the_lease_holder_keeps_the_lease_when_redis_lost_its_key(
    courses_settings: Settings, redis: Redis, captured_logs: io.StringIO
) -> None:
    async with serve_app(create_app(courses_settings)):

        async def lease_is(present: bool) -> bool:
            return bool(await redis.exists(courses_keys.LEASE)) == present

        await eventually(lambda: lease_is(True))
        owner = await redis.get(courses_keys.LEASE)
        await redis.flushdb()
        await eventually(lambda: lease_is(True), timeout_s=courses_settings.lease_ttl_s * 2)
        assert await redis.get(courses_keys.LEASE) == owner
    events = [e["event"] for e in log_events(captured_logs)]
    assert "lease_lost" not in events  # the exchange connections never stopped
    assert "lease_key_lost_taken_back" in events


async def test_the_polygon_budget_window_survives_redis_losing_it(redis: Redis) -> None:
    budget = UpstreamBudget(redis, calls=2, window_s=60)
    await budget.acquire(max_wait_s=0)
    await budget.acquire(max_wait_s=0)

    await redis.flushdb()  # Redis restarted empty: the shared window is gone
    with pytest.raises(UpstreamError) as caught:
        await budget.acquire(max_wait_s=0)
    assert caught.value.failure.kind == "budget"
    assert await redis.zcard(stocks_keys.BUDGET_CALLS) == 2  # put back, for every replica
    with pytest.raises(UpstreamError):
        await UpstreamBudget(redis, calls=2, window_s=60).acquire(max_wait_s=0)


async def test_a_polygon_429_pause_survives_redis_losing_it(redis: Redis) -> None:
    budget = UpstreamBudget(redis, calls=5, window_s=60)
    await budget.pause(30)
    await redis.flushdb()
    with pytest.raises(UpstreamError) as caught:
        await budget.acquire(max_wait_s=0)
    assert caught.value.failure.retry_after_s is not None
    assert 25 < caught.value.failure.retry_after_s <= 30
    with pytest.raises(UpstreamError):  # and the other replicas pause again too
        await UpstreamBudget(redis, calls=5, window_s=60).acquire(max_wait_s=0)
