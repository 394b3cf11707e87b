"""Warm start: the last known quotes, copied from PostgreSQL into Redis before any exchange answers."""

from __future__ import annotations

import asyncpg
from redis.asyncio import Redis

from ratesvc.courses import keys
from ratesvc.courses.quotes_hash import encode_quotes, load_quotes, newer_than
from ratesvc.models import Quote


async def latest_in_postgres(db: asyncpg.Pool) -> dict[str, Quote]:
    """The latest quote per market as PostgreSQL keeps it (``quotes_latest``)."""
    rows = await db.fetch("SELECT source, market, value, observed_at FROM quotes_latest")
    quotes = (
        Quote(
            source=row["source"],
            market=row["market"],
            value=row["value"],
            observed_at=row["observed_at"],
        )
        for row in rows
    )
    return {quote.key: quote for quote in quotes}


async def warm_start(redis: Redis, db: asyncpg.Pool) -> int:
    """Copy last known quotes from PostgreSQL into Redis where Redis has nothing newer."""
    backed = await latest_in_postgres(db)
    newer = newer_than(backed.values(), await load_quotes(redis))
    if newer:
        await redis.hset(keys.QUOTES, mapping=encode_quotes(newer))
    return len(newer)
