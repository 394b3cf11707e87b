"""State Redis holds and PostgreSQL backs comes back by itself after Redis lost it.

Redis is restarted empty on the same port (SIGKILL, no persistence) under
running replicas, or a key is deleted behind the service's back.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from pathlib import Path

import asyncpg
import httpx
import msgspec
import pytest
from redis.asyncio import Redis

from events.conftest import db_counts, event, events_client, events_settings, redis_counts
from ratesvc.config import Settings
from ratesvc.embedded import EmbeddedRedis
from ratesvc.events import keys as event_keys
from support.servers import eventually

__all__ = ["events_settings"]  # the fixture, for this module

BACK_WITHIN_S = 5.0
SIGNUPS = 999


@pytest.fixture
async def own_redis(tmp_path: Path) -> AsyncIterator[EmbeddedRedis]:
    """A Redis of the test's own, so it can be killed and restarted empty."""
    server = EmbeddedRedis(tmp_path / "redis", persistent=False).start()
    yield server
    server.stop()


def _count_is(expected: int) -> object:
    def accept(response: httpx.Response) -> bool:
        return response.status_code == 200 and response.json()["count"] == expected

    return accept


@pytest.mark.slow
async def test_counts_are_right_again_after_redis_restarted_empty(
    events_settings: Settings, db: asyncpg.Connection, own_redis: EmbeddedRedis
) -> None:
    settings = msgspec.structs.replace(events_settings, redis_url=own_redis.url)
    async with AsyncExitStack() as stack:
        replicas = [await stack.enter_async_context(events_client(settings)) for _ in range(2)]
        signups = [event("signup", user_id=i) for i in range(SIGNUPS)]
        assert (await replicas[0].post("/v1/events", json=signups)).status_code == 202
        for replica in replicas:
            await eventually(lambda r=replica: r.get("/v1/stats/signup"), _count_is(SIGNUPS))

        port = own_redis.port
        own_redis.kill()
        own_redis.start(port=port)  # empty: no persistence

        for replica in replicas:
            await eventually(
                lambda r=replica: r.get("/v1/stats/signup"),
                _count_is(SIGNUPS),
                timeout_s=BACK_WITHIN_S,
            )
            unknown = await replica.get("/v1/stats/never-seen")
            assert unknown.json() == {"event_type": "never-seen", "count": 0}
        # New events after the loss count on top of what PostgreSQL already held.
        assert (await replicas[1].post("/v1/events", json=event("signup"))).status_code == 202
        await eventually(lambda: replicas[0].get("/v1/stats/signup"), _count_is(SIGNUPS + 1))
        redis = Redis.from_url(own_redis.url)
        try:
            await eventually(
                lambda: redis_counts(redis), lambda c: c == {"signup": SIGNUPS + 1}
            )
        finally:
            await redis.aclose()
    assert await db_counts(db) == {"signup": SIGNUPS + 1}


async def test_a_deleted_counts_key_is_answered_from_postgres_and_rebuilt(
    events_settings: Settings, redis: Redis, db: asyncpg.Connection
) -> None:
    async with events_client(events_settings) as client:
        batch = [event("login"), event("login"), event("logout")]
        assert (await client.post("/v1/events", json=batch)).status_code == 202
        await eventually(lambda: client.get("/v1/stats/login"), _count_is(2))

        await redis.delete(event_keys.COUNTS)
        assert (await client.get("/v1/stats/login")).json()["count"] == 2  # at once
        assert (await client.get("/v1/stats/logout")).json()["count"] == 1
        await eventually(
            lambda: redis_counts(redis),
            lambda c: c == {"login": 2, "logout": 1},
            timeout_s=BACK_WITHIN_S,
        )
    assert await db_counts(db) == {"login": 2, "logout": 1}
