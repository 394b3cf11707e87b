"""The range-aware bar cache: one Redis hash per series, one field per time chunk.

Nothing here expires through Redis: an entry past its freshness is still the
best answer when Polygon fails (served marked stale), so freshness is decided
on read from when the chunk was fetched:

* a chunk fetched after its session closed (its last Eastern midnight plus
  ``settle_s``; later if its last bar runs on past it, as a week can) is
  final; unadjusted bars never change, split-adjusted ones are refetched
  after ``adjusted_max_age_s`` because a split rewrites history;
* a chunk fetched while its session was open is fresh for ``open_ttl_s``.

Memory is bounded by an explicit purge (``ratesvc purge``) or Redis's
eviction policy (whole series are evicted as one key).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

import msgspec
from redis.asyncio import Redis

from ratesvc.log import get_logger
from ratesvc.pipelined import PipelinedRedis
from ratesvc.stocks import keys
from ratesvc.stocks.chunk import CachedChunk
from ratesvc.stocks.models import SeriesKey
from ratesvc.stocks.timegrid import chunk_closes_ms

log = get_logger("stocks.cache")


class BarStore:
    def __init__(
        self,
        redis: Redis,
        *,
        open_ttl_s: float,
        settle_s: float,
        adjusted_max_age_s: float,
        reader: PipelinedRedis | None = None,
    ) -> None:
        self.redis = redis
        self.reader = reader
        """Reads of cache hits go through this pipelined client when given (see pipelined.py)."""
        self.open_ttl_ms = int(open_ttl_s * 1000)
        self.settle_ms = int(settle_s * 1000)
        self.adjusted_max_age_ms = int(adjusted_max_age_s * 1000)

    def closes_at_ms(self, series: SeriesKey, chunk: date) -> int:
        """From this instant on, a fetch of ``chunk`` is final."""
        return chunk_closes_ms(chunk, series.timespan, series.multiplier) + self.settle_ms

    def is_fresh(self, series: SeriesKey, chunk: date, stored: CachedChunk, now_ms: int) -> bool:
        age_ms = now_ms - stored.fetched_ms
        if stored.fetched_ms >= self.closes_at_ms(series, chunk):
            return not series.adjusted or age_ms < self.adjusted_max_age_ms
        return age_ms < self.open_ttl_ms

    async def load(self, series: SeriesKey, chunks: Sequence[date]) -> list[CachedChunk | None]:
        if not chunks:
            return []
        key = keys.bars_key(series.id)
        fields = [c.isoformat() for c in chunks]
        if self.reader is not None:
            values = await self.reader.execute("HMGET", key, *fields)
        else:
            values = await self.redis.hmget(key, fields)
        loaded: list[CachedChunk | None] = []
        for chunk, value in zip(chunks, values, strict=True):
            if value is None:
                loaded.append(None)
                continue
            try:
                data = value.encode() if isinstance(value, str) else value
                loaded.append(CachedChunk.decode(data))
            except (msgspec.DecodeError, ValueError):
                # A chunk written by an incompatible version: refetch it.
                log.warning("bad_chunk_in_redis", series=series.id, chunk=chunk.isoformat())
                loaded.append(None)
        return loaded

    async def save(self, series: SeriesKey, chunks: dict[date, CachedChunk]) -> None:
        if chunks:
            mapping = {chunk.isoformat(): stored.encode() for chunk, stored in chunks.items()}
            await self.redis.hset(keys.bars_key(series.id), mapping=mapping)  # type: ignore[arg-type]
