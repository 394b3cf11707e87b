"""Simulated Binance and CoinGecko over real sockets, and settings pointing at them."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

import msgspec
import pytest
from redis.asyncio import Redis

from ratesvc.config import Settings
from ratesvc.courses import keys
from ratesvc.courses.quotes_hash import encode_quotes
from ratesvc.embedded import free_port
from ratesvc.models import Quote
from ratesvc_sim.server import build_http_app, simulator_urls
from ratesvc_sim.upstreams import Upstreams
from support.servers import serve_app


@dataclass
class Simulated:
    upstreams: Upstreams
    urls: dict[str, str]


@pytest.fixture
async def simulated() -> AsyncIterator[Simulated]:
    upstreams = Upstreams(seed=7, tick_s=0.1)
    upstreams.coingecko.calls_per_minute = 100_000
    async with (
        serve_app(build_http_app(upstreams.http_routes())) as http_base,
        upstreams.serve_websocket("127.0.0.1", 0) as ws_port,
    ):
        walk = asyncio.create_task(upstreams.run())
        yield Simulated(upstreams, simulator_urls(http_base, f"ws://127.0.0.1:{ws_port}"))
        walk.cancel()


def point_at(settings: Settings, urls: dict[str, str], **overrides: object) -> Settings:
    return msgspec.structs.replace(
        settings,
        binance_ws_url=urls["RATESVC_BINANCE_WS_URL"],
        binance_rest_url=urls["RATESVC_BINANCE_REST_URL"],
        coingecko_url=urls["RATESVC_COINGECKO_URL"],
        coingecko_poll_interval_s=0.2,
        stale_after_s=1.0,
        coingecko_stale_after_s=30.0,
        binance_silence_s=0.5,
        binance_reconnect_min_s=0.05,
        binance_reconnect_max_s=0.2,
        lease_ttl_s=1.0,
        **overrides,
    )


@pytest.fixture
def courses_settings(settings: Settings, simulated: Simulated) -> Settings:
    return point_at(settings, simulated.urls)


PRICES = {
    "binance|BTCUSDT": "67158.90759935",
    "binance|ETHUSDT": "3464.5",
    "binance|USDCUSDT": "1.0002",
    "coingecko|bitcoin/usd": "67100.1",
    "coingecko|bitcoin/rub": "6201000.5",
    "coingecko|ethereum/usd": "3460.25",
    "coingecko|ethereum/rub": "319800",
    "coingecko|tether/usd": "0.9998",
    "coingecko|tether/rub": "92.41",
}
"""One price per upstream market the direction table uses."""


async def write_prices(redis: Redis, prices: dict[str, str], observed_at: datetime) -> None:
    """Quotes in Redis as the drainer writes them."""
    quotes = []
    for key, value in prices.items():
        source, market = key.split("|")
        quotes.append(
            Quote(source=source, market=market, value=Decimal(value), observed_at=observed_at)
        )
    await redis.hset(keys.QUOTES, mapping=encode_quotes({q.key: q for q in quotes}))


@pytest.fixture
async def frozen_settings(settings: Settings, redis: Redis) -> Settings:
    """Fixed prices in Redis, fresh for an hour, and upstreams that never answer: steady bodies."""
    await write_prices(redis, PRICES, datetime.now(UTC))
    nowhere = f"127.0.0.1:{free_port()}"
    return msgspec.structs.replace(
        settings,
        binance_ws_url=f"ws://{nowhere}",
        binance_rest_url=f"http://{nowhere}",
        coingecko_url=f"http://{nowhere}",
        stale_after_s=3600.0,
        coingecko_stale_after_s=3600.0,
    )
