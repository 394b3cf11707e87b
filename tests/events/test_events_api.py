"""POST /v1/events and GET /v1/stats against real Redis and PostgreSQL."""

from __future__ import annotations

import asyncio

import asyncpg
import httpx
import pytest
from redis.asyncio import Redis

from ratesvc.config import Settings
from support.servers import eventually

from .conftest import db_counts, event, events_client, redis_counts, table_counts


async def _count(client: httpx.AsyncClient, event_type: str) -> int:
    response = await client.get(f"/v1/stats/{event_type}")
    assert response.status_code == 200
    body = response.json()
    assert body["event_type"] == event_type
    count: int = body["count"]
    return count


async def test_event_is_accepted_stored_and_counted(
    events_settings: Settings, db: asyncpg.Connection
) -> None:
    async with events_client(events_settings) as client:
        assert await _count(client, "login") == 0
        response = await client.post("/v1/events", json=event(payload={"page": "/btc"}))
        assert response.status_code == 202
        assert response.json() == {"status": "received"}
        await eventually(lambda: _count(client, "login"), lambda n: n == 1)
    row = await db.fetchrow("SELECT user_id, event_type, occurred_at, payload FROM events")
    assert row is not None
    assert row["user_id"] == 7
    assert row["occurred_at"].timestamp() == 1_700_000_000
    assert row["payload"] == '{"page": "/btc"}'


async def test_batch_form_accepts_an_array(
    events_settings: Settings, db: asyncpg.Connection, redis: Redis
) -> None:
    batch = [event("login"), event("logout"), event("login", payload={"a": [1, 2]})]
    async with events_client(events_settings) as client:
        response = await client.post("/v1/events", json=batch)
        assert response.status_code == 202
        assert response.json() == {"status": "received", "count": 3}
        await eventually(lambda: _count(client, "logout"), lambda n: n == 1)
        assert await _count(client, "login") == 2
    assert await db_counts(db) == {"login": 2, "logout": 1}
    assert await redis_counts(redis) == {"login": 2, "logout": 1}


async def test_retries_with_the_same_event_id_count_once(
    events_settings: Settings, db: asyncpg.Connection, redis: Redis
) -> None:
    retried = event("purchase", event_id="3f1c-retry")
    async with events_client(events_settings) as client:
        for _ in range(5):
            assert (await client.post("/v1/events", json=retried)).status_code == 202
        # Also inside one batch, and mixed with a distinct event.
        both = [retried, retried, event("purchase", event_id="other")]
        assert (await client.post("/v1/events", json=both)).status_code == 202
        await eventually(lambda: redis.xlen("ratesvc:events:stream"), lambda n: n == 0)
        assert await _count(client, "purchase") == 2
    assert await db_counts(db) == {"purchase": 2}
    assert await table_counts(db) == {"purchase": 2}


async def test_counts_are_exact_under_2000_concurrent_posts(
    events_settings: Settings, db: asyncpg.Connection, redis: Redis
) -> None:
    total = 2000
    async with events_client(events_settings) as client:
        limits = asyncio.Semaphore(200)  # 200 requests in flight at any moment

        async def post(i: int) -> int:
            async with limits:
                body = event("view" if i % 2 else "click", user_id=i)
                return (await client.post("/v1/events", json=body)).status_code

        statuses = await asyncio.gather(*(post(i) for i in range(total)))
        assert statuses.count(202) == total
        await eventually(
            lambda: redis_counts(redis),
            lambda c: sum(c.values()) == total,
            timeout_s=30,
        )
    expected = {"view": total // 2, "click": total // 2}
    assert await redis_counts(redis) == expected
    assert await db_counts(db) == expected
    assert await table_counts(db) == expected


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"event_type": "login", "timestamp": 1}, "user_id"),
        ({"user_id": "seven", "event_type": "login", "timestamp": 1}, "user_id"),
        ({"user_id": 1, "event_type": "", "timestamp": 1}, "event_type"),
        ({"user_id": 1, "event_type": "a b", "timestamp": 1}, "event_type"),
        ({"user_id": 1, "event_type": "login", "timestamp": 1.5}, "timestamp"),
        ({"user_id": 1, "event_type": "login", "timestamp": -1}, "timestamp"),
        ({"user_id": 1, "event_type": "login", "timestamp": 1, "payload": [1]}, "payload"),
        (
            {"user_id": 1, "event_type": "login", "timestamp": 1, "payload": {"k": "a\x00"}},
            "payload",
        ),
        ({"user_id": 1, "event_type": "login", "timestamp": 1, "event_id": ""}, "event_id"),
        ([{"user_id": 1, "event_type": "login", "timestamp": 1}, {"user_id": 1}], "[1].event_type"),
    ],
)
async def test_bad_bodies_are_refused_naming_the_field(
    events_settings: Settings, redis: Redis, body: object, field: str
) -> None:
    async with events_client(events_settings) as client:
        response = await client.post("/v1/events", json=body)
    assert response.status_code == 400
    assert response.headers["content-type"].startswith("application/json")
    error = response.json()
    assert error["error"] == "bad_request"
    assert error["field"] == field
    assert field.rsplit(".", maxsplit=1)[-1] in error["detail"]
    assert await redis.xlen("ratesvc:events:stream") == 0


async def test_malformed_empty_and_oversized_bodies(events_settings: Settings) -> None:
    async with events_client(events_settings) as client:
        for raw in (b"{not json", b"", b"[]", b"42"):
            response = await client.post(
                "/v1/events", content=raw, headers={"content-type": "application/json"}
            )
            assert response.status_code == 400, raw
            assert response.json()["error"] == "bad_request"
        wrong_method = await client.get("/v1/events")
        assert wrong_method.status_code == 405
        assert wrong_method.json()["error"] == "method_not_allowed"
        huge = [event(payload={"pad": "x" * 1000})] * 1100  # about 1.2 MB
        response = await client.post("/v1/events", json=huge)
        assert response.status_code == 413
        assert response.json()["error"] == "request_entity_too_large"


async def test_stats_of_unknown_and_invalid_types(events_settings: Settings) -> None:
    async with events_client(events_settings) as client:
        assert await _count(client, "never-seen") == 0
        response = await client.get("/v1/stats/" + "x" * 65)
        assert response.status_code == 400
        assert response.json()["field"] == "event_type"
