"""Where quotes go: Redis (latest quotes + pre-rendered answers) and PostgreSQL (warm start, history)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

import asyncpg
import msgspec
from redis.asyncio import Redis

from ratesvc.courses import keys
from ratesvc.courses.rates import Freshness, compute_rates
from ratesvc.courses.render import SHAPES, render
from ratesvc.log import get_logger
from ratesvc.models import Quote

log = get_logger("courses.sinks")

_encode = msgspec.json.Encoder(decimal_format="number").encode
_decode_quote = msgspec.json.Decoder(Quote).decode


class RenderTick(msgspec.Struct, frozen=True, tag="render_tick"):
    """No new price, but time passed: re-render so answers and streams notice staleness."""


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


class RedisCoursesSink:
    """Latest quotes and the pre-rendered answers, in one Redis round trip per batch.

    Keeps the latest quotes in memory (primed from Redis when this replica takes
    the exchange lease) so rendering needs no read.  Publishes the default answer
    on ``keys.CHANGES`` whenever its bytes change, for the SSE stream.
    """

    name = "redis_courses"

    def __init__(self, redis: Redis, freshness: Freshness, partial: str) -> None:
        self.redis = redis
        self.freshness = freshness
        self.partial = partial
        self.quotes: dict[str, Quote] = {}
        self._bodies: dict[str, bytes] = {}

    async def prime(self) -> None:
        """Take over the shared view of the latest quotes (another replica may have written them)."""
        stored = await load_quotes(self.redis)
        for key, quote in stored.items():
            mine = self.quotes.get(key)
            if mine is None or quote.observed_at > mine.observed_at:
                self.quotes[key] = quote
        self._bodies.clear()

    async def write(self, batch: Sequence[object]) -> None:
        newest = quotes_in(batch)
        if not newest and not any(isinstance(item, RenderTick) for item in batch):
            return
        self.quotes.update(newest)
        now = datetime.now(UTC)
        rates = compute_rates(self.quotes, self.freshness)
        pipe = self.redis.pipeline(transaction=False)
        if newest:
            pipe.hset(keys.QUOTES, mapping={k: encode_quote(q) for k, q in newest.items()})
        changed_default: bytes | None = None
        for shape, exchanger in SHAPES.items():
            rendered = render(rates, now, exchanger=exchanger, partial=self.partial)
            stored = rendered.to_redis()
            # Re-store when the bytes change or validity moved (same body, new deadline).
            if self._bodies.get(shape) != stored:
                pipe.set(keys.body_key(shape), stored)
                if shape == "default" and _body_of(self._bodies.get(shape)) != rendered.body:
                    changed_default = rendered.body
                self._bodies[shape] = stored
        if changed_default is not None:
            pipe.publish(keys.CHANGES, changed_default)
        if len(pipe):
            await pipe.execute()


def _body_of(stored: bytes | None) -> bytes | None:
    return None if stored is None else stored.partition(b"\n")[2]


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


async def warm_start(redis: Redis, db: asyncpg.Pool) -> int:
    """Copy last known quotes from PostgreSQL into Redis where Redis has nothing newer."""
    rows = await db.fetch("SELECT source, market, value, observed_at FROM quotes_latest")
    in_redis = await load_quotes(redis)
    newer: dict[str, Quote] = {}
    for row in rows:
        quote = Quote(
            source=row["source"],
            market=row["market"],
            value=row["value"],
            observed_at=row["observed_at"],
        )
        seen = in_redis.get(quote.key)
        if seen is None or quote.observed_at > seen.observed_at:
            newer[quote.key] = quote
    if newer:
        await redis.hset(keys.QUOTES, mapping={k: encode_quote(q) for k, q in newer.items()})
    return len(newer)


async def prune_history(db: asyncpg.Pool, keep_days: float) -> int:
    result: str = await db.execute(
        "DELETE FROM quote_history WHERE minute < now() - make_interval(secs => $1)",
        keep_days * 86400,
    )
    return int(result.rsplit(maxsplit=1)[-1])


def _minute(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(second=0, microsecond=0)
