"""CoinGecko's faults against the running service: it backs off, Binance keeps answering."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from courses.test_courses_api import complete_from
from ratesvc.app import create_app
from ratesvc.config import Settings
from support.servers import eventually, serve_app

from .conftest import Simulated

WINDOW_S = 3.0


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["rate_limited", "error", "html", "garbage", "slow"])
async def test_coingecko_trouble_backs_off_and_binance_answers(
    courses_settings: Settings, simulated: Simulated, mode: str
) -> None:
    coingecko = simulated.upstreams.coingecko
    coingecko.retry_after_s = 60
    coingecko.slow_s = WINDOW_S + 1  # answers after the window: no second poll meanwhile
    async with (
        serve_app(create_app(courses_settings)) as base,
        httpx.AsyncClient(base_url=base) as client,
    ):
        await eventually(lambda: client.get("/v1/courses"), complete_from("binance"))
        coingecko.set_mode(mode)  # type: ignore[arg-type]
        calls = coingecko.calls
        await asyncio.sleep(WINDOW_S)  # the window in which polls are counted, not a wait for state
        # Polling every 0.2 s would make 15 calls; backoff (or Retry-After: 60) makes far fewer.
        assert coingecko.calls - calls <= 7, coingecko.calls - calls
        answer = await client.get("/v1/courses")
        assert complete_from("binance")(answer)
        ready = (await client.get("/v1/ready")).json()
        assert ready["tasks"]["exchanges"]["restarts"] == 0
