"""Drainers that died leave the consumer group once their entries are taken over."""

from __future__ import annotations

import asyncpg
from redis.asyncio import Redis

from ratesvc.config import Settings
from ratesvc.events import keys
from ratesvc.events.consumers import IdleConsumers
from ratesvc.events.drainer import ensure_group
from ratesvc.events.model import Event, encode_entry
from support.servers import eventually

from .conftest import db_counts, events_client, redis_counts, stream_length


async def consumers(redis: Redis) -> dict[str, int]:
    """Consumer name -> pending entries."""
    infos = await redis.xinfo_consumers(keys.STREAM, keys.GROUP)
    return {_text(info["name"]): int(info["pending"]) for info in infos}


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


async def _add(redis: Redis, entries: int) -> None:
    for n in range(entries):
        entry = encode_entry([Event(user_id=n, event_type="login", timestamp=1)])
        await redis.xadd(keys.STREAM, {keys.ENTRY_FIELD: entry})


async def test_a_killed_consumer_is_removed_after_its_entries_are_claimed(
    events_settings: Settings, redis: Redis, migrated_db: asyncpg.Connection
) -> None:
    await ensure_group(redis)
    await _add(redis, 6)
    # Two drainers die: one holding three entries it read, one after finishing its work.
    await redis.xreadgroup(keys.GROUP, "killed-mid-batch", {keys.STREAM: ">"}, count=3)
    await redis.xreadgroup(keys.GROUP, "killed-when-done", {keys.STREAM: ">"}, count=1)
    finished = await redis.xpending_range(keys.STREAM, keys.GROUP, "-", "+", 10, "killed-when-done")
    await redis.xack(keys.STREAM, keys.GROUP, finished[0]["message_id"])
    assert (await consumers(redis)) == {"killed-mid-batch": 3, "killed-when-done": 0}

    async with events_client(events_settings) as client:
        await eventually(lambda: redis_counts(redis), lambda c: c == {"login": 5})
        await eventually(lambda: stream_length(redis), lambda n: n == 1)  # the acked one
        # Only the service's own consumer is left, holding nothing.
        left = await eventually(lambda: consumers(redis), lambda c: len(c) == 1)
        assert list(left.values()) == [0]
        metrics = (await client.get("/metrics")).text
        assert "ratesvc_events_consumers_removed_total 2.0" in metrics
    assert await db_counts(migrated_db) == {"login": 5}


async def test_a_consumer_with_pending_entries_is_never_removed(redis: Redis) -> None:
    await ensure_group(redis)
    await _add(redis, 2)
    await redis.xreadgroup(keys.GROUP, "holding", {keys.STREAM: ">"}, count=2)
    for name in ("empty", "me"):
        await redis.xgroup_createconsumer(keys.STREAM, keys.GROUP, name)

    # Recently seen consumers stay, whatever they hold.
    assert await IdleConsumers(redis, min_idle_ms=60_000).remove(keep="me") == []
    # Idle ones go only when nothing is pending; the caller's own consumer never.
    assert await IdleConsumers(redis, min_idle_ms=0).remove(keep="me") == ["empty"]
    assert await consumers(redis) == {"holding": 2, "me": 0}
