"""Helpers for the events tests: an app with only the events feature, store probes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
import httpx
import msgspec
import pytest
from redis.asyncio import Redis

from ratesvc.app import create_app
from ratesvc.config import Settings
from ratesvc.events import keys
from ratesvc.events.plugin import EventsPlugin
from ratesvc.migrate import apply_migrations
from support.apps import app_client


@pytest.fixture
def events_settings(settings: Settings) -> Settings:
    """Volume tests post thousands of requests from one address: lift the rate limit."""
    return msgspec.structs.replace(settings, rate_limit="1000000/minute", events_claim_idle_s=0.5)


@pytest.fixture
async def migrated_db(db: asyncpg.Connection) -> asyncpg.Connection:
    """The clean test database with ratesvc's tables, for tests that start no app."""
    await apply_migrations(db)
    return db


@asynccontextmanager
async def events_client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """An app of the test's own, in-process: its consumers and counters start from the stores.

    Not one app per module: emptying Redis between tests would delete the stream
    and consumer group under a running app.
    """
    async with app_client(create_app(settings, plugins=[EventsPlugin()])) as client:
        yield client


def event(event_type: str = "login", **fields: Any) -> dict[str, Any]:
    return {"user_id": 7, "event_type": event_type, "timestamp": 1_700_000_000, **fields}


async def redis_counts(redis: Redis) -> dict[str, int]:
    raw = await redis.hgetall(keys.COUNTS)
    counts = {_text(k): int(v) for k, v in raw.items()}
    counts.pop(keys.COMPLETE, None)
    return counts


def _text(value: bytes | str) -> str:
    """A hash field as text (the client returns bytes; its stubs allow str too)."""
    return value.decode() if isinstance(value, bytes) else value


async def db_counts(db: asyncpg.Connection) -> dict[str, int]:
    """count(*) of stored rows per type - the truth the counters must equal."""
    rows = await db.fetch("SELECT event_type, count(*) AS n FROM events GROUP BY event_type")
    return {r["event_type"]: r["n"] for r in rows}


async def table_counts(db: asyncpg.Connection) -> dict[str, int]:
    rows = await db.fetch("SELECT event_type, count FROM event_counts")
    return {r["event_type"]: r["count"] for r in rows}


async def stream_length(redis: Redis) -> int:
    return int(await redis.xlen(keys.STREAM))
