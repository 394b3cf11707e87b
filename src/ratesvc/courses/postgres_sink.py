"""The drainer's PostgreSQL sink: latest quotes (warm start), per-minute history and minute bars."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import TypeVar

import asyncpg
from redis.asyncio import Redis

from ratesvc.courses.bars import Bar, BarKey, MinuteBars, minute_of
from ratesvc.courses.history_cache import bump_generations, late_pairs
from ratesvc.courses.quotes_hash import newest_per_market
from ratesvc.log import get_logger
from ratesvc.models import Quote
from ratesvc.retry import STORE_ERRORS, backoff_delays

log = get_logger("courses.postgres_sink")
_K = TypeVar("_K")
_V = TypeVar("_V")


def _drop_oldest(pending: dict[_K, _V], keep: int) -> int:
    """Drop the oldest entries (insertion order) past ``keep``; how many went."""
    dropped = 0
    while len(pending) > keep:
        del pending[next(iter(pending))]
        dropped += 1
    return dropped


def _forget_written(pending: dict[_K, _V], written: dict[_K, _V]) -> None:
    """Drop what was written, unless it was replaced meanwhile (that is still to write)."""
    for key, value in written.items():
        if pending.get(key) is value:
            del pending[key]


class PostgresQuoteSink:
    """Upserts the latest quote per market, the last quote of each minute (history), and
    the open/high/low/close of each minute per direction and source (``rate_history``).

    While PostgreSQL is unreachable nothing is lost within a bound: quotes wait
    in memory, coalesced as they would be stored (the newest per market, and
    the last per market and minute), and are written with the first batch
    after PostgreSQL is back.  Attempts back off (up to ``retry_max_s``) so an
    outage costs the drainer nothing, and each attempt is cut at
    ``write_timeout_s`` so a hung database never stalls the Redis side.  Past
    ``buffer_max`` history rows the oldest minutes are dropped, counted, logged
    as an ERROR, and ``/v1/ready`` says so until a write succeeds again.
    Minute bars wait the same way, bounded by ``buffer_max`` bars.

    Closed history is cached in Redis (``history_cache``); bars of minutes
    that closed a while ago (written after an outage) bump the cache
    generation of their (direction, source) once they are in PostgreSQL, so
    no cached chunk misses them.
    """

    name = "postgres_quotes"

    def __init__(
        self,
        db: asyncpg.Pool,
        *,
        buffer_max: int = 20_000,
        write_timeout_s: float = 5.0,
        retry_min_s: float = 0.5,
        retry_max_s: float = 10.0,
        bars: MinuteBars | None = None,
        redis: Redis | None = None,
    ) -> None:
        self.db = db
        self.bars = bars
        self.redis = redis
        self._bars: dict[BarKey, Bar] = {}
        """Pending minute bars, oldest minute first."""
        self._late: set[tuple[str, str]] = set()
        """(direction, source) whose cache generation still has to be bumped."""
        self.buffer_max = buffer_max
        self.write_timeout_s = write_timeout_s
        self._retry_min_s = retry_min_s
        self._retry_max_s = retry_max_s
        self._latest: dict[str, Quote] = {}
        self._history: dict[tuple[str, str, datetime], Quote] = {}
        """Pending history rows, oldest minute first (insertion order)."""
        self._delays = backoff_delays(retry_min_s, retry_max_s)
        self._next_attempt = 0.0
        self.failing_since: float | None = None
        self.dropped = 0
        """History rows dropped because the buffer was full (PostgreSQL down too long)."""
        self.overflowed = False
        """Rows were dropped since the last successful write: /v1/ready reports it."""
        self.failures = 0

    @property
    def pending(self) -> int:
        """History rows and minute bars waiting for PostgreSQL."""
        return len(self._history) + len(self._bars)

    def healthy(self) -> bool:
        """The readiness check: False while history is being dropped."""
        return not self.overflowed

    async def write(self, batch: Sequence[Quote]) -> None:
        newest = newest_per_market(batch)
        for quote in newest.values():
            self._keep(quote)
        if self.bars is not None and newest:
            self.bars.fold(newest, self._bars)
        if not self._latest and not self._history and not self._bars:
            return
        now = time.monotonic()
        if now < self._next_attempt:
            self._trim()
            return
        latest, history, bars = dict(self._latest), dict(self._history), dict(self._bars)
        try:
            async with asyncio.timeout(self.write_timeout_s):
                await self._store(
                    list(latest.values()), list(history.values()), list(bars.values())
                )
        except STORE_ERRORS as exc:
            self.failures += 1
            self._trim()
            delay = next(self._delays)
            self._next_attempt = now + delay
            if self.failing_since is None:
                self.failing_since = now
                log.warning(
                    "history_write_deferred",
                    pending=self.pending,
                    buffer_max=self.buffer_max,
                    error=repr(exc),
                )
            return
        _forget_written(self._latest, latest)
        _forget_written(self._history, history)
        _forget_written(self._bars, bars)
        await self._bump_late(bars.values())
        self._delays = backoff_delays(self._retry_min_s, self._retry_max_s)
        self._next_attempt = 0.0
        if self.failing_since is not None:
            log.info(
                "history_write_recovered",
                rows=len(history),
                outage_s=round(now - self.failing_since, 1),
                dropped_total=self.dropped,
            )
            self.failing_since = None
        self.overflowed = False

    def _keep(self, quote: Quote) -> None:
        seen = self._latest.get(quote.key)
        if seen is None or quote.observed_at >= seen.observed_at:
            self._latest[quote.key] = quote
        minute_key = (quote.source, quote.market, minute_of(quote.observed_at))
        seen = self._history.get(minute_key)
        if seen is None or quote.observed_at >= seen.observed_at:
            self._history[minute_key] = quote

    async def _bump_late(self, bars: Iterable[Bar]) -> None:
        self._late |= late_pairs(bars, datetime.now(UTC))
        if not self._late or self.redis is None:
            return
        try:
            await bump_generations(self.redis, self._late)
        except STORE_ERRORS as exc:
            log.warning("history_cache_bump_deferred", pairs=len(self._late), error=repr(exc))
            return
        self._late.clear()

    @staticmethod
    async def _store_bars(conn: asyncpg.Connection, bars: list[Bar]) -> None:
        if not bars:
            return
        # A bar of a minute may be written in parts (every batch, or after an
        # outage): merging keeps the earliest open, the latest close, the extremes.
        await conn.executemany(
            """INSERT INTO rate_history
                   (direction, source, minute, open, high, low, close, open_at, close_at, samples)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
               ON CONFLICT (direction, source, minute) DO UPDATE SET
                   open = CASE WHEN excluded.open_at < rate_history.open_at
                               THEN excluded.open ELSE rate_history.open END,
                   close = CASE WHEN excluded.close_at >= rate_history.close_at
                                THEN excluded.close ELSE rate_history.close END,
                   high = greatest(rate_history.high, excluded.high),
                   low = least(rate_history.low, excluded.low),
                   open_at = least(rate_history.open_at, excluded.open_at),
                   close_at = greatest(rate_history.close_at, excluded.close_at),
                   samples = rate_history.samples + excluded.samples""",
            [
                (
                    b.direction,
                    b.source,
                    b.minute,
                    b.open,
                    b.high,
                    b.low,
                    b.close,
                    b.open_at,
                    b.close_at,
                    b.samples,
                )
                for b in bars
            ],
        )

    def _trim(self) -> None:
        dropped = _drop_oldest(self._history, self.buffer_max)
        dropped += _drop_oldest(self._bars, self.buffer_max)
        if not dropped:
            return
        self.dropped += dropped
        if not self.overflowed:
            self.overflowed = True
            log.error(
                "history_buffer_full_dropping_oldest",
                buffer_max=self.buffer_max,
                dropped_total=self.dropped,
            )

    async def _store(self, latest: list[Quote], history: list[Quote], bars: list[Bar]) -> None:
        async with self.db.acquire() as conn, conn.transaction():
            await self._store_bars(conn, bars)
            if latest:
                await conn.executemany(
                    """INSERT INTO quotes_latest (source, market, value, observed_at)
                       VALUES ($1, $2, $3, $4)
                       ON CONFLICT (source, market) DO UPDATE
                       SET value = excluded.value, observed_at = excluded.observed_at
                       WHERE excluded.observed_at >= quotes_latest.observed_at""",
                    [(q.source, q.market, q.value, q.observed_at) for q in latest],
                )
            if history:
                await conn.executemany(
                    """INSERT INTO quote_history (source, market, value, observed_at, minute)
                       VALUES ($1, $2, $3, $4, $5)
                       ON CONFLICT (source, market, minute) DO UPDATE
                       SET value = excluded.value, observed_at = excluded.observed_at
                       WHERE excluded.observed_at >= quote_history.observed_at""",
                    [
                        (q.source, q.market, q.value, q.observed_at, minute_of(q.observed_at))
                        for q in history
                    ],
                )


async def prune_history(db: asyncpg.Pool, keep_days: float) -> int:
    """Delete history and minute bars older than ``keep_days`` (``RATESVC_HISTORY_DAYS``)."""
    deleted = 0
    for table in ("quote_history", "rate_history"):
        result: str = await db.execute(
            f"DELETE FROM {table} WHERE minute < now() - make_interval(secs => $1)",  # noqa: S608
            keep_days * 86400,
        )
        deleted += int(result.rsplit(maxsplit=1)[-1])
    return deleted
