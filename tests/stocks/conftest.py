"""Fixtures: the Polygon simulator on a real port and ratesvc apps pointed at it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

import httpx
import msgspec
import pytest
from litestar import Litestar

from ratesvc.app import create_app
from ratesvc.config import Settings
from ratesvc_sim.polygon import PolygonSimulator
from support.servers import serve_app

API_KEY = "pk_TEST_5ecret_d0_not_leak_91f3"
"""The service's Polygon key in these tests; it must never show up anywhere but upstream."""


@pytest.fixture
def polygon() -> PolygonSimulator:
    return PolygonSimulator(seed=7, api_key=API_KEY)


@pytest.fixture
async def polygon_url(polygon: PolygonSimulator) -> AsyncIterator[str]:
    app = Litestar(route_handlers=polygon.routes(), openapi_config=None, logging_config=None)
    async with serve_app(app) as base:
        yield f"{base}/polygon"


@pytest.fixture
def stock_settings(settings: Settings, polygon_url: str) -> Settings:
    """Settings for an app on the test stores and the simulator, with a roomy budget."""
    return msgspec.structs.replace(
        settings,
        polygon_url=polygon_url,
        polygon_api_key=API_KEY,
        polygon_calls_per_minute=1000,
        polygon_timeout_s=2.0,
        stocks_budget_wait_s=1.0,
        stocks_refresh_interval_s=3600.0,
    )


ServeStocks = Callable[..., AbstractAsyncContextManager[httpx.AsyncClient]]


@pytest.fixture
def serve_stocks(stock_settings: Settings) -> ServeStocks:
    """``async with serve_stocks(**overrides) as client``: a ratesvc app on a real port."""

    @asynccontextmanager
    async def serve(**overrides: object) -> AsyncIterator[httpx.AsyncClient]:
        chosen = msgspec.structs.replace(stock_settings, **overrides)
        async with (
            serve_app(create_app(chosen)) as base,
            httpx.AsyncClient(base_url=base, timeout=30) as client,
        ):
            yield client

    return serve


@pytest.fixture
async def client(serve_stocks: ServeStocks) -> AsyncIterator[httpx.AsyncClient]:
    async with serve_stocks() as http:
        yield http
