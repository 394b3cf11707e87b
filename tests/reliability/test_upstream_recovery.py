"""Back on an upstream within seconds of it answering again, however long it was down.

Both tests run with the production reconnect and retry settings.  An outage's
length matters only through the backoff state, and with these settings the
backoff reaches its cap after a few attempts; an outage of 60 s or of an hour
leaves it in exactly that state (every later delay is drawn from the same
range), so the tests refuse until the cap is reached rather than for a minute.
"""

from __future__ import annotations

import io
import time
from collections.abc import Callable

import httpx
import msgspec
import pytest

from courses.test_courses_api import complete_from
from ratesvc.app import create_app
from ratesvc.config import Settings
from ratesvc.courses.binance import RECONNECT_JITTER
from support.servers import eventually, serve_app

from .conftest import Simulated, log_events

DEFAULTS = Settings()
BACK_WITHIN_S = 5.0
REFUSED_ATTEMPTS = 4
"""Binance: the delays double from 1 s and reach the 3 s cap at the third attempt."""
FAILED_POLLS = 3
"""CoinGecko: with a 30 s poll interval the retry backoff starts at its 4 s cap."""


async def _count_reached(read: Callable[[], int], at_least: int, timeout_s: float) -> None:
    async def reached() -> bool:
        return read() >= at_least

    await eventually(reached, timeout_s=timeout_s, interval_s=0.05)


@pytest.mark.slow
async def test_binance_is_back_within_5s_after_a_long_refusal(
    courses_settings: Settings, simulated: Simulated, captured_logs: io.StringIO
) -> None:
    settings = msgspec.structs.replace(
        courses_settings,
        binance_reconnect_min_s=DEFAULTS.binance_reconnect_min_s,
        binance_reconnect_max_s=DEFAULTS.binance_reconnect_max_s,
    )
    cap_s = settings.binance_reconnect_max_s
    binance = simulated.upstreams.binance
    async with (
        serve_app(create_app(settings)) as base,
        httpx.AsyncClient(base_url=base) as client,
    ):
        await eventually(lambda: client.get("/v1/courses"), complete_from("binance"))
        binance.set_mode("refuse")
        await binance.drop_all()
        await eventually(lambda: client.get("/v1/courses"), complete_from("coingecko"))
        await _count_reached(lambda: binance.handshakes_refused, REFUSED_ATTEMPTS, 30)

        binance.set_mode("normal")
        back_at = time.monotonic()
        await eventually(
            lambda: client.get("/v1/courses"), complete_from("binance"), timeout_s=BACK_WITHIN_S
        )
        took_s = time.monotonic() - back_at
    assert took_s < BACK_WITHIN_S, took_s
    delays = [e["delay_s"] for e in log_events(captured_logs) if e["event"] == "ws_reconnecting"]
    assert len(delays) >= REFUSED_ATTEMPTS, delays
    assert max(delays) <= cap_s, delays
    # At the cap, attempts are at least 2.4 s apart: at most 125 in any 5 minutes,
    # well inside Binance's 300 connection attempts per 5 minutes per IP.
    floor_s = cap_s * (1 - RECONNECT_JITTER)
    assert min(delays[2:]) >= floor_s - 0.001, delays


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["error", "rate_limited"])
async def test_coingecko_is_back_within_5s_after_a_long_run_of_failures(
    courses_settings: Settings, simulated: Simulated, mode: str
) -> None:
    settings = msgspec.structs.replace(
        courses_settings,
        coingecko_poll_interval_s=DEFAULTS.coingecko_poll_interval_s,
        coingecko_retry_max_s=DEFAULTS.coingecko_retry_max_s,
    )
    coingecko = simulated.upstreams.coingecko
    coingecko.retry_after_s = 1  # the 429s say "come back in a second"
    coingecko.set_mode(mode)  # type: ignore[arg-type]
    async with (
        serve_app(create_app(settings)) as base,
        httpx.AsyncClient(base_url=base) as client,
    ):
        started = time.monotonic()
        await _count_reached(lambda: coingecko.calls, FAILED_POLLS, 20)
        failing_s = time.monotonic() - started
        # Retries at least 3.2 s apart while it fails: at most 19 calls a minute.
        assert coingecko.calls <= 1 + failing_s / 3.2, (coingecko.calls, failing_s)

        coingecko.set_mode("normal")
        back_at = time.monotonic()
        await eventually(
            lambda: client.get("/v1/courses", params={"exchanger": "coingecko"}),
            complete_from("coingecko"),
            timeout_s=BACK_WITHIN_S,
        )
        took_s = time.monotonic() - back_at
    assert took_s < BACK_WITHIN_S, took_s
