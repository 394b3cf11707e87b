"""Warm start from PostgreSQL, and one exchange-connection holder among replicas."""

from __future__ import annotations

from contextlib import AsyncExitStack
from decimal import Decimal

import asyncpg
import httpx
from litestar import Litestar
from redis.asyncio import Redis

from ratesvc.app import create_app
from ratesvc.config import Settings
from ratesvc.courses.state import CoursesState
from ratesvc.plugin import state_of
from support.apps import app_client
from support.servers import eventually, serve_app

from .conftest import Simulated
from .test_courses_api import complete_from


async def test_warm_start_answers_before_any_exchange(
    courses_settings: Settings, simulated: Simulated, redis: Redis, db: asyncpg.Connection
) -> None:
    async with app_client(create_app(courses_settings)) as client:
        await eventually(lambda: client.get("/v1/courses"), complete_from("binance"))
    # Shutdown drained the queue: the last quotes are in PostgreSQL.
    stored = {
        r["market"]: r
        for r in await db.fetch("SELECT * FROM quotes_latest WHERE source = 'binance'")
    }
    assert {"BTCUSDT", "ETHUSDT", "USDCUSDT"} <= set(stored)

    await redis.flushdb()  # Redis lost everything; no exchange will answer.
    simulated.upstreams.binance.set_mode("refuse")
    simulated.upstreams.coingecko.set_mode("error")
    async with app_client(create_app(courses_settings)) as client:
        response = await client.get(
            "/v1/courses", params={"exchanger": "binance", "direction": "BTC-USD"}
        )
    assert response.status_code == 200
    (row,) = response.json()["courses"]
    assert Decimal(str(row["value"])) == stored["BTCUSDT"]["value"].normalize()
    original = stored["BTCUSDT"]["observed_at"]
    assert row["updated_at"].startswith(original.strftime("%Y-%m-%dT%H:%M:%S"))


def _holds_lease(app: Litestar) -> bool:
    return bool(state_of(app, CoursesState).lease.held)


async def test_one_replica_holds_the_exchanges_and_another_takes_over(
    courses_settings: Settings, simulated: Simulated
) -> None:
    apps = [create_app(courses_settings), create_app(courses_settings)]
    stacks = [AsyncExitStack(), AsyncExitStack()]
    bases = [
        await stack.enter_async_context(serve_app(app))
        for stack, app in zip(stacks, apps, strict=True)
    ]
    try:

        async def someone_holds() -> bool:
            return any(_holds_lease(app) for app in apps)

        await eventually(someone_holds, timeout_s=5)
        assert [_holds_lease(app) for app in apps].count(True) == 1
        assert simulated.upstreams.binance.connections_accepted == 1

        # Stop the holder; the other replica takes over within a few lease TTLs.
        holder = 0 if _holds_lease(apps[0]) else 1
        survivor = 1 - holder
        await stacks[holder].aclose()

        async def survivor_holds() -> bool:
            return _holds_lease(apps[survivor])

        await eventually(survivor_holds, timeout_s=courses_settings.lease_ttl_s * 3)

        async def reconnected() -> bool:
            return simulated.upstreams.binance.connections_accepted == 2

        await eventually(reconnected, timeout_s=5)
        async with httpx.AsyncClient(base_url=bases[survivor]) as client:
            await eventually(lambda: client.get("/v1/courses"), complete_from("binance"))
    finally:
        for stack in stacks:
            await stack.aclose()
