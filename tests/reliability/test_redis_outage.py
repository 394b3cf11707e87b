"""Redis killed (SIGKILL) and restarted on the same port while the service runs."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import httpx
import msgspec
import pytest

from ratesvc.app import REDIS_SOCKET_TIMEOUT_S, create_app
from ratesvc.config import Settings
from ratesvc.courses.directions import DIRECTIONS
from ratesvc.embedded import EmbeddedRedis
from support.servers import eventually, serve_app

from .conftest import Simulated

STOCKS = "/v1/stocks/aggs/AAPL/range/1/day/2024-01-02/2024-01-31"
EVENT = {"user_id": 1, "event_type": "outage", "timestamp": 1_700_000_000}
ANSWER_WITHIN_S = 1.0
FRESH_WITHIN_S = 5.0
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
ALL = len(DIRECTIONS)


def fresh_binance_rows(since: datetime, count: int) -> Callable[[httpx.Response], bool]:
    """Accept a 200 with ``count`` rows, every one from Binance after ``since``."""

    def accept(response: httpx.Response) -> bool:
        if response.status_code != 200:
            return False
        rows = response.json()["courses"]
        return len(rows) == count and all(
            row["source"] == "binance"
            and datetime.fromisoformat(row["updated_at"]) > since
            and "stale" not in row
            for row in rows
        )

    return accept


async def _timed(client: httpx.AsyncClient, method: str, path: str) -> tuple[httpx.Response, float]:
    started = time.monotonic()
    response = await client.request(method, path, json=EVENT if method == "POST" else None)
    return response, time.monotonic() - started


@pytest.mark.slow
async def test_redis_outage_gives_fast_503s_and_recovers_by_itself(
    courses_settings: Settings, simulated: Simulated, tmp_path: Path
) -> None:
    server = EmbeddedRedis(tmp_path / "redis", persistent=False).start()
    try:
        # CoinGecko polled once a minute, as in production: after Redis lost
        # everything, its quotes must come back without waiting for the next poll.
        settings = msgspec.structs.replace(
            courses_settings, redis_url=server.url, coingecko_poll_interval_s=60.0
        )
        async with (
            serve_app(create_app(settings)) as base,
            httpx.AsyncClient(base_url=base, timeout=30) as client,
        ):
            cross = {"direction": "BTC-RUB,ETH-USD"}
            await eventually(lambda: client.get("/v1/courses"), fresh_binance_rows(EPOCH, ALL))
            await eventually(
                lambda: client.get("/v1/courses", params=cross), fresh_binance_rows(EPOCH, 2)
            )
            assert (await client.post("/v1/events", json=EVENT)).status_code == 202

            port = server.port
            server.kill()
            # A copy of the default answer read just before the kill may be served
            # for a few more milliseconds (courses/local.py); then the outage shows.
            await eventually(
                lambda: client.get("/v1/courses"), lambda r: r.status_code == 503, timeout_s=1
            )
            requests = [
                ("GET", "/v1/courses"),
                ("GET", "/v1/courses?direction=BTC-RUB"),
                ("GET", "/v1/courses?exchanger=coingecko"),
                ("GET", "/v1/convert?from=BTC&to=RUB"),
                ("GET", "/v1/stats/outage"),
                ("POST", "/v1/events"),
                ("GET", STOCKS),
            ]
            for _ in range(3):  # the first request on each pooled connection, then fresh ones
                for method, path in requests:
                    response, took = await _timed(client, method, path)
                    assert response.status_code == 503, (path, response.text)
                    assert response.headers["content-type"].startswith("application/json")
                    assert response.json()["error"] == "service_unavailable"
                    assert took < ANSWER_WITHIN_S, (path, took)
            assert (await client.get("/v1/health")).status_code == 200
            ready = await client.get("/v1/ready")
            assert ready.status_code == 503
            assert ready.json()["redis"] != "ok"
            await asyncio.sleep(2)  # let the background tasks fail and back off a few times

            restarted_at = datetime.now(UTC)
            await asyncio.to_thread(server.start, port=port)
            started = time.monotonic()
            await eventually(
                lambda: client.get("/v1/courses"),
                fresh_binance_rows(restarted_at, ALL),
                timeout_s=15,
            )
            await eventually(
                lambda: client.get("/v1/courses", params=cross),
                fresh_binance_rows(restarted_at, 2),
                timeout_s=15,
            )
            recovered_s = time.monotonic() - started
            await eventually(lambda: client.get("/v1/ready"), lambda r: r.status_code == 200)
            assert (await client.post("/v1/events", json=EVENT)).status_code == 202
            await eventually(
                lambda: client.get("/v1/stats/outage"),
                lambda r: r.status_code == 200 and r.json()["count"] >= 1,
            )
        assert recovered_s < FRESH_WITHIN_S, recovered_s
    finally:
        server.stop()


@pytest.mark.slow
async def test_hung_redis_gives_503_within_the_socket_timeout(
    courses_settings: Settings, tmp_path: Path
) -> None:
    """SIGSTOP: connections stay open but nothing answers (a network partition looks alike)."""
    server = EmbeddedRedis(tmp_path / "redis", persistent=False).start()
    try:
        settings = msgspec.structs.replace(courses_settings, redis_url=server.url)
        async with (
            serve_app(create_app(settings)) as base,
            httpx.AsyncClient(base_url=base, timeout=30) as client,
        ):
            await eventually(
                lambda: client.get("/v1/courses", params={"direction": "BTC-USD"}),
                fresh_binance_rows(EPOCH, 1),
            )
            assert server.pid is not None
            os.kill(server.pid, signal.SIGSTOP)
            try:
                # /v1/courses may answer from its copy of the quotes for up to 50 ms
                # after the stop (courses/local.py); then its read of Redis hangs.
                await eventually(
                    lambda: client.get("/v1/courses", params={"direction": "BTC-USD"}),
                    lambda r: r.status_code == 503,
                    timeout_s=2 * REDIS_SOCKET_TIMEOUT_S + 2,
                )
                for method, path in [
                    ("GET", "/v1/courses?direction=BTC-USD"),
                    ("GET", "/v1/convert?from=BTC&to=USD"),
                    ("GET", "/v1/stats/outage"),
                    ("GET", STOCKS),
                ]:
                    response, took = await _timed(client, method, path)
                    assert response.status_code == 503, (path, response.text)
                    assert response.json()["error"] == "service_unavailable"
                    assert took < REDIS_SOCKET_TIMEOUT_S + 1.0, (path, took)
            finally:
                os.kill(server.pid, signal.SIGCONT)
            resumed_at = datetime.now(UTC)
            await eventually(
                lambda: client.get("/v1/courses", params={"direction": "BTC-USD"}),
                fresh_binance_rows(resumed_at, 1),
                timeout_s=FRESH_WITHIN_S,
            )
    finally:
        server.stop()
