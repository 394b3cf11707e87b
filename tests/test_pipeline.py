import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import asyncpg
from redis.asyncio import Redis

from ratesvc.courses import keys
from ratesvc.courses.plugin import DEFAULT_SOURCES
from ratesvc.courses.postgres_sink import PostgresQuoteSink
from ratesvc.courses.quotes_hash import load_quotes
from ratesvc.courses.rates import Pricing
from ratesvc.courses.redis_sink import RedisCoursesSink
from ratesvc.courses.sources import Freshness, Sources
from ratesvc.migrate import apply_migrations
from ratesvc.models import Quote
from ratesvc.pipeline import Drainer, UpdateQueue
from support.servers import eventually

PRICING = Pricing(Sources(DEFAULT_SOURCES), Freshness({"binance": 5, "coingecko": 60}))
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
        queue, [RedisCoursesSink(redis, PRICING, "omit"), PostgresQuoteSink(pool)], batch_max=2
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
    drainer = Drainer(queue, [BrokenSink(), RedisCoursesSink(redis, PRICING, "omit")])
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


async def test_an_idle_queue_hands_the_sinks_an_empty_batch() -> None:
    """Time passing travels as the drainer's idle timeout, not as a message on the queue."""

    class RecordingSink:
        name = "recording"

        def __init__(self) -> None:
            self.batches: list[list[Quote]] = []
            self.idle = asyncio.Event()

        async def write(self, batch: Sequence[Quote]) -> None:
            self.batches.append(list(batch))
            if not batch:
                self.idle.set()

    sink = RecordingSink()
    queue = UpdateQueue(10)
    drainer = Drainer(queue, [sink], idle_s=0.05)
    task = asyncio.create_task(drainer.run())
    try:
        queue.offer(quote("BTCUSDT", "1", 0))
        async with asyncio.timeout(5):
            await sink.idle.wait()
    finally:
        task.cancel()
    assert sink.batches[0] == [quote("BTCUSDT", "1", 0)]
    assert drainer.batches == 1  # idle batches are not counted as written


async def test_the_lease_holder_publishes_a_source_turning_stale_without_new_quotes(
    redis: Redis, db: asyncpg.Connection, database_url: str
) -> None:
    await apply_migrations(db)
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=2)
    pubsub = redis.pubsub()
    await pubsub.subscribe(keys.CHANGES)
    assert (await pubsub.get_message(timeout=5) or {}).get("type") == "subscribe"
    pricing = Pricing(Sources(DEFAULT_SOURCES), Freshness({"binance": 0.3}))
    bystander = RedisCoursesSink(redis, pricing, "omit")
    holder = RedisCoursesSink(redis, pricing, "omit")
    try:
        await bystander.write([])  # not the lease holder: renders and publishes nothing
        await holder.prime(pool)
        observed = datetime.now(UTC)
        await holder.write(
            [Quote(source="binance", market="BTCUSDT", value=Decimal(1), observed_at=observed)]
        )
        first = await pubsub.get_message(timeout=5)
        assert first is not None
        assert (
            b'"BTC-USD"' in first["data"]
        )  # the holder's answer came first: the bystander sent none

        async def idle_render() -> bytes | None:
            await holder.write([])
            message = await pubsub.get_message(timeout=0.05)
            return None if message is None else bytes(message["data"])

        stale = await eventually(idle_render, lambda body: body is not None)
        assert stale is not None
        assert stale.startswith(b'{"error"')  # no fresh rate left: the stream says so
    finally:
        await pubsub.aclose()  # type: ignore[no-untyped-call]
        await pool.close()
