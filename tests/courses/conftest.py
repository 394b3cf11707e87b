"""Simulated Binance and CoinGecko over real sockets, and settings pointing at them."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass

import msgspec
import pytest

from ratesvc.config import Settings
from ratesvc.simulate.server import build_http_app, simulator_urls
from ratesvc.simulate.upstreams import Upstreams
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
