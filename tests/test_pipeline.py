import asyncio
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import asyncpg
from redis.asyncio import Redis

from ratesvc.courses import keys
from ratesvc.courses.rates import Freshness
from ratesvc.courses.sinks import PostgresQuoteSink, RedisCoursesSink, load_quotes
from ratesvc.migrate import apply_migrations
from ratesvc.models import Quote
from ratesvc.pipeline import Drainer, UpdateQueue

FRESHNESS = Freshness(5, 60)
T0 = datetime(2026, 11, 21, 12, 0, 5, tzinfo=UTC)


def quote(market: str, value: str, seconds: int) -> Quote:
    return Quote(
        source="binance",
        market=market,
        value=Decimal(value),
        observed_at=T0 + timedelta(seconds=seconds),
    )


async def test_drainer_writes_latest_to_redis_and_history_to_postgres(
    redis: Redis, db: asyncpg.Connection, database_url: str
) -> None:
    await apply_migrations(db)
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=2)
    queue = UpdateQueue(100)
    drainer = Drainer(
        queue, [RedisCoursesSink(redis, FRESHNESS, "omit"), PostgresQuoteSink(pool)], batch_max=2
    )
    task = asyncio.create_task(drainer.run())
    try:
        for i, value in enumerate(["100.5", "101.5", "99.25"]):
            assert queue.offer(quote("BTCUSDT", value, i))
        queue.offer(quote("ETHUSDT", "3000", 70))
        assert await queue.join(5)
    finally:
        task.cancel()
        await pool.close()

    latest = await load_quotes(redis)
    assert latest["binance|BTCUSDT"].value == Decimal("99.25")
    assert latest["binance|ETHUSDT"].value == Decimal("3000")
    row = await db.fetchrow("SELECT value FROM quotes_latest WHERE market = 'BTCUSDT'")
    assert row["value"] == Decimal("99.25")
    history = await db.fetch("SELECT market, minute, value FROM quote_history ORDER BY market")
    assert [(r["market"], r["value"]) for r in history] == [
        ("BTCUSDT", Decimal("99.25")),
        ("ETHUSDT", Decimal("3000")),
    ]
    assert drainer.batches >= 2  # batch_max=2 split the four updates


async def test_a_failing_sink_does_not_stop_the_other(redis: Redis) -> None:
    class BrokenSink:
        name = "broken"

        async def write(self, batch: object) -> None:
            raise ConnectionError("store down")

    queue = UpdateQueue(10)
    drainer = Drainer(queue, [BrokenSink(), RedisCoursesSink(redis, FRESHNESS, "omit")])
    task = asyncio.create_task(drainer.run())
    try:
        queue.offer(quote("BTCUSDT", "1", 0))
        assert await queue.join(5)
    finally:
        task.cancel()
    assert drainer.sink_errors == {"broken": 1}
    assert await redis.hexists(keys.QUOTES, "binance|BTCUSDT")


def test_full_queue_drops_and_counts() -> None:
    queue = UpdateQueue(1)
    assert queue.offer(quote("A", "1", 0))
    assert not queue.offer(quote("A", "2", 1))
    assert queue.dropped == 1
