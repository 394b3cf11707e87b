"""Fixtures: the Polygon simulator on a real port and ratesvc apps pointed at it.

The module's tests share one simulator and one app (``client``); each test gets
them back as built: the stores emptied and the simulator's settings, faults and
recorded calls restored.  A test that changes the app's own memory (a 429 pauses
its budget; its counters feed ``/metrics``) starts an app of its own with
``serve_stocks``.  The shared app runs the stocks feature alone, without the
per-client rate limit, whose counts would carry over from test to test.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

import httpx
import msgspec
import pytest
from litestar import Litestar

from ratesvc.app import create_app
from ratesvc.config import Settings
from ratesvc.stocks.plugin import StocksPlugin
from ratesvc_sim.polygon import PolygonSimulator
from support.apps import app_client
from support.servers import serve_app

API_KEY = "pk_TEST_5ecret_d0_not_leak_91f3"
"""The service's Polygon key in these tests; it must never show up anywhere but upstream."""


def new_simulator() -> PolygonSimulator:
    return PolygonSimulator(seed=7, api_key=API_KEY)


@pytest.fixture(scope="module")
def module_polygon() -> PolygonSimulator:
    return new_simulator()


@pytest.fixture
def polygon(module_polygon: PolygonSimulator) -> PolygonSimulator:
    """The module's simulator as built: earlier tests' settings, faults and calls gone."""
    built = new_simulator()
    for field in dataclasses.fields(built):
        setattr(module_polygon, field.name, getattr(built, field.name))
    return module_polygon


@pytest.fixture(scope="module")
async def polygon_url(module_polygon: PolygonSimulator) -> AsyncIterator[str]:
    app = Litestar(route_handlers=module_polygon.routes(), openapi_config=None, logging_config=None)
    async with serve_app(app) as base:
        yield f"{base}/polygon"


def on_simulator(settings: Settings, polygon_url: str) -> Settings:
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


@pytest.fixture
def stock_settings(settings: Settings, polygon_url: str) -> Settings:
    return on_simulator(settings, polygon_url)


ServeStocks = Callable[..., AbstractAsyncContextManager[httpx.AsyncClient]]


@pytest.fixture
def serve_stocks(stock_settings: Settings, polygon: PolygonSimulator) -> ServeStocks:
    """``async with serve_stocks(**overrides) as client``: an app of the test's own."""

    @asynccontextmanager
    async def serve(**overrides: object) -> AsyncIterator[httpx.AsyncClient]:
        chosen = msgspec.structs.replace(stock_settings, **overrides)
        async with app_client(create_app(chosen)) as client:
            yield client

    return serve


@pytest.fixture(scope="module")
async def module_client(
    store_settings: Settings, polygon_url: str
) -> AsyncIterator[httpx.AsyncClient]:
    # Every test's requests come from one address: under the per-client limit, a long
    # module would start seeing 429s that no single test asked for.
    shared = msgspec.structs.replace(
        on_simulator(store_settings, polygon_url), rate_limit_enabled=False
    )
    # Stocks alone: each test empties Redis, which would delete the events stream and
    # consumer group under a running drainer (and courses would dial the real exchanges).
    async with app_client(create_app(shared, plugins=[StocksPlugin()])) as client:
        yield client


@pytest.fixture
def client(
    module_client: httpx.AsyncClient, stock_settings: Settings, polygon: PolygonSimulator
) -> httpx.AsyncClient:
    """The module's app, on emptied stores and the restored simulator."""
    return module_client
