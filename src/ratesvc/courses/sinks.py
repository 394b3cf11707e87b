"""Where quotes go: Redis (latest, what handlers read) and PostgreSQL (warm start, history)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

import asyncpg
import msgspec
from redis.asyncio import Redis

from ratesvc.courses import keys
from ratesvc.log import get_logger
from ratesvc.models import Quote

log = get_logger("courses.sinks")

_encode = msgspec.json.Encoder(decimal_format="number").encode
_decode_quote = msgspec.json.Decoder(Quote).decode


def quotes_in(batch: Sequence[object]) -> dict[str, Quote]:
    """The newest quote per market in a batch (older ones in the same batch add nothing)."""
    newest: dict[str, Quote] = {}
    for item in batch:
        if isinstance(item, Quote):
            seen = newest.get(item.key)
            if seen is None or item.observed_at >= seen.observed_at:
                newest[item.key] = item
    return newest


async def load_quotes(redis: Redis) -> dict[str, Quote]:
    raw = await redis.hgetall(keys.QUOTES)
    quotes = {}
    for field, value in raw.items():
        try:
            quote = _decode_quote(value)
        except msgspec.ValidationError:
            log.warning("bad_quote_in_redis", field=field)
            continue
        quotes[quote.key] = quote
    return quotes


def encode_quote(quote: Quote) -> bytes:
    return _encode(quote)


class RedisQuoteSink:
    """Writes the latest quote per market to one Redis hash, one round trip per batch."""

    name = "redis_quotes"

    def __init__(self, redis: Redis) -> None:
        self.redis = redis

    async def write(self, batch: Sequence[object]) -> None:
        newest = quotes_in(batch)
        if newest:
            await self.redis.hset(
                keys.QUOTES, mapping={k: encode_quote(q) for k, q in newest.items()}
            )


class PostgresQuoteSink:
    """Upserts the latest quote per market and the last quote of each minute (history)."""

    name = "postgres_quotes"

    def __init__(self, db: asyncpg.Pool) -> None:
        self.db = db

    async def write(self, batch: Sequence[object]) -> None:
        newest = quotes_in(batch)
        if not newest:
            return
        rows = [(q.source, q.market, q.value, q.observed_at) for q in newest.values()]
        history = [(*row, _minute(row[3])) for row in rows]
        async with self.db.acquire() as conn, conn.transaction():
            await conn.executemany(
                """INSERT INTO quotes_latest (source, market, value, observed_at)
                   VALUES ($1, $2, $3, $4)
                   ON CONFLICT (source, market) DO UPDATE
                   SET value = excluded.value, observed_at = excluded.observed_at
                   WHERE excluded.observed_at >= quotes_latest.observed_at""",
                rows,
            )
            await conn.executemany(
                """INSERT INTO quote_history (source, market, value, observed_at, minute)
                   VALUES ($1, $2, $3, $4, $5)
                   ON CONFLICT (source, market, minute) DO UPDATE
                   SET value = excluded.value, observed_at = excluded.observed_at
                   WHERE excluded.observed_at >= quote_history.observed_at""",
                history,
            )


def _minute(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(second=0, microsecond=0)
