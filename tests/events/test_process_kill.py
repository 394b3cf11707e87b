"""SIGKILL a serving process mid-drain, start another: every accepted event counted once."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import asyncpg
import pytest
from redis.asyncio import Redis

from ratesvc.config import Settings
from ratesvc.events import keys
from ratesvc.events.drainer import ensure_group
from ratesvc.events.model import Event, encode_entry
from support.environment import store_environment
from support.serve_process import serve_process
from support.servers import eventually

from .conftest import db_counts, redis_counts, stream_length, table_counts

pytestmark = pytest.mark.slow


@contextmanager
def serving(settings: Settings, data_dir: Path, log_path: Path) -> Iterator[tuple[str, int]]:
    """``ratesvc serve`` on the test stores, draining in small batches (2 entries each)."""
    environment = {
        **store_environment(settings, data_dir),
        "RATESVC_RATE_LIMIT": "1000000/minute",
        "RATESVC_EVENTS_BATCH_MAX": "2",
        "RATESVC_EVENTS_CLAIM_IDLE_S": "1",
    }
    with serve_process(environment, log_path) as running:
        yield running.base, running.process.pid


async def _stored(db: asyncpg.Connection) -> int:
    count: int = await db.fetchval("SELECT count(*) FROM events")
    return count


async def _consumer_count(redis: Redis) -> int:
    return len(await redis.xinfo_consumers(keys.STREAM, keys.GROUP))


async def test_sigkill_mid_drain_loses_and_duplicates_nothing(
    settings: Settings, redis: Redis, db: asyncpg.Connection, tmp_path: Path
) -> None:
    # 200 accepted requests of 50 events each, already in the stream when the service
    # starts (exactly what POST /v1/events leaves there), so the kill lands mid-drain.
    await ensure_group(redis)
    for n in range(200):
        batch = [
            Event(user_id=n, event_type=("login", "view")[i % 2], timestamp=1) for i in range(50)
        ]
        await redis.xadd(keys.STREAM, {keys.ENTRY_FIELD: encode_entry(batch)})
    expected = {"login": 5000, "view": 5000}
    with serving(settings, tmp_path / "data", tmp_path / "first.log") as (_base, pid):
        await eventually(lambda: _stored(db), lambda n: n > 0, interval_s=0.005)
        os.killpg(pid, signal.SIGKILL)
    assert await _stored(db) < sum(expected.values())
    assert await stream_length(redis) > 0

    with serving(settings, tmp_path / "data", tmp_path / "second.log"):
        # The new process drains the rest and, after events_claim_idle_s, takes over
        # the batch the killed one had in hand.
        await eventually(lambda: redis_counts(redis), lambda c: c == expected, timeout_s=60)
        await eventually(lambda: stream_length(redis), lambda n: n == 0)
        # The killed process's consumer is gone from the group: only the live one is left.
        await eventually(lambda: _consumer_count(redis), lambda n: n == 1)
    assert await db_counts(db) == expected
    assert await table_counts(db) == expected
    assert (await redis.xpending("ratesvc:events:stream", "ratesvc-events-drainers"))[
        "pending"
    ] == 0
