"""Units of the outage behaviour: the sinks keep what they could not write; store errors restart fast."""

from __future__ import annotations

import asyncio
import io
import time
from contextlib import AbstractAsyncContextManager
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import asyncpg
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError

from ratesvc.courses.plugin import DEFAULT_SOURCES
from ratesvc.courses.postgres_sink import PostgresQuoteSink
from ratesvc.courses.quotes_hash import load_quotes
from ratesvc.courses.rates import Pricing
from ratesvc.courses.redis_sink import RedisCoursesSink
from ratesvc.courses.sources import Freshness, Sources
from ratesvc.embedded import free_port
from ratesvc.migrate import apply_migrations
from ratesvc.models import Quote
from ratesvc.supervisor import Supervisor
from support.servers import eventually

from .conftest import log_events

T0 = datetime(2026, 11, 21, 12, 0, 5, tzinfo=UTC)


def quote(market: str, value: str, seconds: float = 0, source: str = "binance") -> Quote:
    return Quote(
        source=source,
        market=market,
        value=Decimal(value),
        observed_at=T0 + timedelta(seconds=seconds),
    )


class DownPool:
    """Stands for an asyncpg pool while PostgreSQL refuses connections."""

    attempts = 0

    def acquire(self) -> AbstractAsyncContextManager[Any]:
        self.attempts += 1
        raise ConnectionRefusedError(111, "Connect call failed")


async def test_history_waits_while_postgres_is_down_and_nothing_is_lost(
    db: asyncpg.Connection, database_url: str, captured_logs: io.StringIO
) -> None:
    await apply_migrations(db)
    down = DownPool()
    sink = PostgresQuoteSink(down, retry_min_s=0.01, retry_max_s=0.02)
    # Three minutes of BTC and one of ETH, while PostgreSQL is down.
    for minute in range(3):
        for second in (0, 20, 40):
            await sink.write([quote("BTCUSDT", f"{100 + minute}.{second}", minute * 60 + second)])
    await sink.write([quote("ETHUSDT", "3000")])
    assert down.attempts >= 1
    assert sink.pending == 4  # one row per market and minute: the last quote of each
    assert sink.healthy()
    [warning] = [e for e in log_events(captured_logs) if e["event"] == "history_write_deferred"]
    assert warning["level"] == "warning"

    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=2)
    try:
        sink.db = pool
        await eventually(lambda: _flushed(sink))
    finally:
        await pool.close()
    history = await db.fetch("SELECT market, value FROM quote_history ORDER BY market, minute")
    assert [(r["market"], str(r["value"])) for r in history] == [
        ("BTCUSDT", "100.40"),
        ("BTCUSDT", "101.40"),
        ("BTCUSDT", "102.40"),
        ("ETHUSDT", "3000"),
    ]
    latest = await db.fetch("SELECT market, value FROM quotes_latest ORDER BY market")
    assert [(r["market"], str(r["value"])) for r in latest] == [
        ("BTCUSDT", "102.40"),
        ("ETHUSDT", "3000"),
    ]
    assert "history_write_recovered" in captured_logs.getvalue()


async def _flushed(sink: PostgresQuoteSink) -> bool:
    await sink.write([])
    return sink.pending == 0


async def test_history_beyond_the_bound_is_dropped_oldest_first_and_reported(
    captured_logs: io.StringIO,
) -> None:
    sink = PostgresQuoteSink(DownPool(), buffer_max=3, retry_min_s=0.01)
    for minute in range(5):
        await sink.write([quote("BTCUSDT", "100", minute * 60)])
    assert sink.pending == 3
    assert sink.dropped == 2
    assert not sink.healthy()
    errors = [e for e in log_events(captured_logs) if e["level"] == "error"]
    assert [e["event"] for e in errors] == ["history_buffer_full_dropping_oldest"]


async def test_redis_sink_rewrites_everything_after_a_failed_write(redis: Redis) -> None:
    dead = Redis.from_url(f"redis://127.0.0.1:{free_port()}/0", socket_connect_timeout=1)
    sink = RedisCoursesSink(
        dead, Pricing(Sources(DEFAULT_SOURCES), Freshness({"binance": 5, "coingecko": 60})), "omit"
    )
    # CoinGecko quotes once a minute: this one must not wait a minute to reach Redis.
    try:
        await sink.write([quote("tether/rub", "92.5", source="coingecko")])
    except RedisConnectionError:
        pass
    else:
        raise AssertionError("the write to a dead Redis succeeded")
    finally:
        await dead.aclose()
    sink.redis = redis
    await sink.write([])  # time passed: the drainer's idle batch
    assert set(await load_quotes(redis)) == {"coingecko|tether/rub"}


async def test_store_errors_restart_within_a_short_cap_and_log_no_error(
    captured_logs: io.StringIO,
) -> None:
    supervisor = Supervisor(initial_delay_s=0.01, max_delay_s=60, transient_max_delay_s=0.02)
    failures = 0

    async def needs_redis() -> None:
        nonlocal failures
        failures += 1
        raise RedisConnectionError("Error 111 connecting to 127.0.0.1:6379")

    started = time.monotonic()
    supervisor.start("needs_redis", needs_redis)
    try:
        # Twelve failures would back off past a minute; a store outage is capped at 0.02 s.
        await eventually(lambda: asyncio.sleep(0, failures >= 12), timeout_s=5)
    finally:
        await supervisor.stop(grace_s=2)
    assert time.monotonic() - started < 2
    events = log_events(captured_logs)
    assert {e["event"] for e in events if e.get("task") == "needs_redis"} >= {
        "task_interrupted_store_unavailable"
    }
    assert not [e for e in events if e["level"] == "error"]
