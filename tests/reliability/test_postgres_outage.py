"""PostgreSQL stopped and started again under a running service (its own server, same data)."""

from __future__ import annotations

import asyncio
import io
from decimal import Decimal
from pathlib import Path

import asyncpg
import httpx
import msgspec
import pytest

from courses.test_courses_api import complete_from
from ratesvc.app import create_app
from ratesvc.config import Settings
from ratesvc.embedded import EmbeddedPostgres
from support.servers import eventually, serve_app

from .conftest import Simulated, log_events, metric

EVENT = {"user_id": 1, "event_type": "pg-outage", "timestamp": 1_700_000_000}
MARK = 12345.678


def shows(value: float):  # type: ignore[no-untyped-def]
    def accept(response: httpx.Response) -> bool:
        if response.status_code != 200:
            return False
        rows = {r["direction"]: r for r in response.json()["courses"]}
        return bool(rows.get("BTC-USD", {}).get("value") == value)

    return accept


@pytest.mark.slow
async def test_postgres_outage_rates_keep_flowing_history_and_events_wait(
    courses_settings: Settings, simulated: Simulated, tmp_path: Path, captured_logs: io.StringIO
) -> None:
    postgres = EmbeddedPostgres(tmp_path / "pg" / "data").start()
    try:
        settings = msgspec.structs.replace(
            courses_settings, database_url=postgres.url, events_lag_warn_s=0.5
        )
        async with (
            serve_app(create_app(settings)) as base,
            httpx.AsyncClient(base_url=base, timeout=30) as client,
        ):
            await eventually(lambda: client.get("/v1/courses"), complete_from("binance"))
            await asyncio.to_thread(postgres.stop)

            # Rates are served from Redis, and new prices still arrive.
            simulated.upstreams.market.set_price("BTCUSDT", MARK)
            await eventually(lambda: client.get("/v1/courses"), shows(MARK))
            # Nothing newer for BTCUSDT: the outage's last quote must reach the history.
            simulated.upstreams.binance.set_mode("silent")
            for n in range(10):
                body = [{**EVENT, "user_id": n}] * 5
                assert (await client.post("/v1/events", json=body)).status_code == 202
            assert (
                await client.get("/v1/courses", params={"exchanger": "binance"})
            ).status_code == 200

            pending = await eventually(
                lambda: metric(client, "ratesvc_history_pending"), lambda v: bool(v and v > 0)
            )
            assert pending is not None
            await eventually(
                lambda: metric(client, "ratesvc_events_lag_seconds"), lambda v: bool(v and v > 0.5)
            )
            # History is PostgreSQL's record: a clear 503 while it is down.
            history = await client.get("/v1/courses/history", params={"direction": "BTC-USD"})
            assert history.status_code == 503
            assert history.headers["retry-after"]
            ready = await client.get("/v1/ready")
            assert ready.status_code == 503
            assert ready.json()["postgres"] != "ok"
            assert ready.json()["checks"] == {"quote_history": True, "events_backlog": True}
            levels = {e["event"]: e["level"] for e in log_events(captured_logs)}
            assert levels["history_write_deferred"] == "warning"
            assert levels["events_drain_lagging"] == "warning"
            assert not [e for e in log_events(captured_logs) if e["level"] == "error"]

            await asyncio.to_thread(postgres.start)
            await eventually(
                lambda: client.get("/v1/ready"), lambda r: r.status_code == 200, timeout_s=30
            )
            await eventually(
                lambda: client.get("/v1/stats/pg-outage"),
                lambda r: r.json().get("count") == 50,
                timeout_s=30,
            )
            await eventually(
                lambda: metric(client, "ratesvc_history_pending"), lambda v: v == 0, timeout_s=30
            )
            # The minute bars buffered during the outage are in the history now.
            history = await client.get("/v1/courses/history", params={"direction": "BTC-USD"})
            assert MARK in [p["close"] for p in history.json()["points"]]
        conn = await asyncpg.connect(postgres.url)
        try:
            latest = await conn.fetchval(
                "SELECT value FROM quotes_latest WHERE source = 'binance' AND market = 'BTCUSDT'"
            )
            in_history = await conn.fetchval(
                "SELECT count(*) FROM quote_history WHERE market = 'BTCUSDT' AND value = $1",
                Decimal(str(MARK)),
            )
            counted = await conn.fetchval(
                "SELECT count FROM event_counts WHERE event_type = 'pg-outage'"
            )
        finally:
            await conn.close()
        assert latest == Decimal(str(MARK))
        assert in_history == 1
        assert counted == 50
    finally:
        postgres.stop()


@pytest.mark.slow
async def test_postgres_down_past_the_bound_says_so_in_ready(
    courses_settings: Settings, tmp_path: Path, captured_logs: io.StringIO
) -> None:
    postgres = EmbeddedPostgres(tmp_path / "pg" / "data").start()
    try:
        # Fewer rows than markets: the first minute of the outage is already too much.
        settings = msgspec.structs.replace(
            courses_settings, database_url=postgres.url, history_buffer_max=3
        )
        async with (
            serve_app(create_app(settings)) as base,
            httpx.AsyncClient(base_url=base, timeout=30) as client,
        ):
            await eventually(lambda: client.get("/v1/courses"), complete_from("binance"))
            await asyncio.to_thread(postgres.stop)
            ready = await eventually(
                lambda: client.get("/v1/ready"),
                lambda r: r.json()["checks"].get("quote_history") is False,
            )
            assert ready.status_code == 503
            dropped = await metric(client, "ratesvc_history_dropped_total")
            assert dropped is not None
            assert dropped > 0
            assert (await client.get("/v1/courses")).status_code == 200
            errors = [e["event"] for e in log_events(captured_logs) if e["level"] == "error"]
            assert errors == ["history_buffer_full_dropping_oldest"]

            await asyncio.to_thread(postgres.start)
            await eventually(
                lambda: client.get("/v1/ready"), lambda r: r.status_code == 200, timeout_s=30
            )
    finally:
        postgres.stop()
