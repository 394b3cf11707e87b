"""Nothing accepted is lost, nothing is counted twice: crashes, redelivery, store outages."""

from __future__ import annotations

import asyncio
import functools
import operator
import random
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import msgspec
import pytest
from redis.asyncio import Redis

from ratesvc.config import Settings
from ratesvc.embedded import EmbeddedPostgres
from ratesvc.events import keys
from ratesvc.events.drainer import EventDrainer, ensure_group, rows_of
from ratesvc.events.model import Event, encode_entry
from ratesvc.events.store import write_batch
from support.servers import eventually

from .conftest import db_counts, event, events_client, redis_counts, stream_length, table_counts


async def _fill_stream(redis: Redis, entries: int, per_entry: int) -> dict[str, int]:
    """XADD entries the way the API does; return the expected per-type counts."""
    await ensure_group(redis)
    expected: dict[str, int] = {}
    ids_seen: set[str] = set()
    for n in range(entries):
        batch = []
        for i in range(per_entry):
            event_type = ("login", "view", "buy")[(n + i) % 3]
            # Every 7th event is a client retry of one of 20 ids: stored once each.
            event_id = f"retry-{(n * per_entry + i) % 20}" if i % 7 == 0 else None
            batch.append(Event(user_id=n, event_type=event_type, timestamp=1, event_id=event_id))
            if event_id is None or event_id not in ids_seen:
                expected[event_type] = expected.get(event_type, 0) + 1
                if event_id is not None:
                    ids_seen.add(event_id)
        await redis.xadd(keys.STREAM, {keys.ENTRY_FIELD: encode_entry(batch)})
    return expected


async def _stored(db: asyncpg.Connection) -> int:
    count: int = await db.fetchval("SELECT count(*) FROM events")
    return count


async def _assert_exact(redis: Redis, db: asyncpg.Connection, expected: dict[str, int]) -> None:
    assert await db_counts(db) == expected
    assert await table_counts(db) == expected
    assert await redis_counts(redis) == expected
    assert await stream_length(redis) == 0
    pending = await redis.xpending(keys.STREAM, keys.GROUP)
    assert pending["pending"] == 0


async def test_drainer_killed_at_random_points_loses_and_duplicates_nothing(
    redis: Redis, migrated_db: asyncpg.Connection, database_url: str
) -> None:
    db = migrated_db
    expected = await _fill_stream(redis, entries=300, per_entry=10)
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=4)
    total = sum(expected.values())
    chance = random.Random(20240611)
    try:
        # Six drainers in turn, each cancelled at a random moment once it has made some
        # progress (mid-read, mid-insert, between commit and acknowledgement); each
        # successor takes over the entries its predecessor left pending.
        for n in range(6):
            drainer = EventDrainer(
                redis, pool, consumer=f"doomed-{n}", batch_max=3, claim_idle_s=0.05
            )
            task = asyncio.create_task(drainer.run())
            await eventually(
                lambda: _stored(db),
                functools.partial(operator.le, (n + 1) * total // 8),
                interval_s=0.001,
            )
            await asyncio.sleep(chance.uniform(0, 0.01))
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        assert await _stored(db) < total

        survivor = EventDrainer(redis, pool, consumer="survivor", batch_max=20, claim_idle_s=0.05)
        task = asyncio.create_task(survivor.run())
        await eventually(lambda: redis_counts(redis), lambda c: c == expected, timeout_s=30)
        await eventually(lambda: stream_length(redis), lambda n: n == 0)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    finally:
        await pool.close()
    await _assert_exact(redis, db, expected)


async def test_commit_without_acknowledgement_is_repaired_not_recounted(
    events_settings: Settings, redis: Redis, migrated_db: asyncpg.Connection
) -> None:
    db = migrated_db
    expected = await _fill_stream(redis, entries=10, per_entry=10)
    # A drainer reads half the entries, commits them, and dies before raising the
    # counters and acknowledging: the worst crash window.
    # redis-py types the reply loosely; with bytes replies it is [[stream, [(id, fields)]]].
    reply: Any = await redis.xreadgroup(
        keys.GROUP, "died-after-commit", {keys.STREAM: ">"}, count=5
    )
    rows, _corrupt = rows_of(reply[0][1])
    committed_by_dead = (await write_batch(db, rows)).inserted
    assert await redis_counts(redis) == {}

    async with events_client(events_settings) as client:
        # The app drains the other half at once and takes over the dead drainer's
        # entries after events_claim_idle_s: their rows exist, so none is added.
        await eventually(lambda: redis_counts(redis), lambda c: c == expected)
        await eventually(lambda: stream_length(redis), lambda n: n == 0)
        metrics = (await client.get("/metrics")).text
    # The app saw all 100 events; the ones the dead drainer committed were duplicates
    # (as are the client retries of the same event_id).
    inserted_by_app = sum(expected.values()) - committed_by_dead
    assert f"ratesvc_events_rows_duplicate_total {float(100 - inserted_by_app)}" in metrics
    await _assert_exact(redis, db, expected)


async def test_counters_are_rebuilt_from_postgres_when_redis_lost_them(
    events_settings: Settings, redis: Redis, db: asyncpg.Connection
) -> None:
    async with events_client(events_settings) as client:
        batch = [event("login"), event("login"), event("logout")]
        assert (await client.post("/v1/events", json=batch)).status_code == 202
        await eventually(lambda: redis_counts(redis), lambda c: c == {"login": 2, "logout": 1})
    await redis.delete(keys.COUNTS)  # e.g. Redis restarted without persistence
    async with events_client(events_settings) as client:
        response = await client.get("/v1/stats/login")
        assert response.json() == {"event_type": "login", "count": 2}
    assert await redis_counts(redis) == await db_counts(db)


@pytest.mark.slow
async def test_events_wait_in_the_stream_while_postgres_is_down(
    events_settings: Settings, redis: Redis, tmp_path: Path
) -> None:
    postgres = EmbeddedPostgres(tmp_path / "pg" / "data").start()
    try:
        own_db = msgspec.structs.replace(
            events_settings, database_url=postgres.url, events_lag_warn_s=0.5
        )
        async with events_client(own_db) as client:
            await asyncio.to_thread(postgres.stop)
            for n in range(20):
                body = [event("during-outage", user_id=n)] * 5
                assert (await client.post("/v1/events", json=body)).status_code == 202
            assert (await client.get("/v1/ready")).json()["postgres"] != "ok"
            # Held in Redis, visible as lag, until PostgreSQL is back.
            await eventually(
                lambda: _metric(client, "ratesvc_events_lag_seconds"),
                lambda lag: lag > 0.5,
            )
            assert await stream_length(redis) == 20
            await asyncio.to_thread(postgres.start)
            await eventually(
                lambda: redis_counts(redis), lambda c: c == {"during-outage": 100}, timeout_s=30
            )
        conn = await asyncpg.connect(postgres.url)
        try:
            assert await db_counts(conn) == {"during-outage": 100}
        finally:
            await conn.close()
    finally:
        postgres.stop()


async def _metric(client: httpx.AsyncClient, name: str) -> float:
    for line in (await client.get("/metrics")).text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError(f"{name} not exposed")
