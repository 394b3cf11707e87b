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

Each chunk has a version next to it (field ``@<chunk>``): a random token
written in the same HSET as the chunk, so any write of it, by any replica,
gives it a new version, and a purged or evicted series has none.  A process
may keep an answer it built from chunks for as long as the versions it read
with them are still theirs (``hot.py``).
"""

from __future__ import annotations

import secrets
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

VERSION_MARK = "@"
"""``@<chunk>`` is the version field of a chunk (chunks are named by a date)."""
FOREVER_MS = 2**62
"""``fresh_until_ms`` of a chunk that never changes."""


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

    def fresh_until_ms(self, series: SeriesKey, chunk: date, stored: CachedChunk) -> int:
        """The instant from which ``stored`` is no longer served as it is."""
        if stored.fetched_ms >= self.closes_at_ms(series, chunk):
            if not series.adjusted:
                return FOREVER_MS
            return stored.fetched_ms + self.adjusted_max_age_ms
        return stored.fetched_ms + self.open_ttl_ms

    def is_fresh(self, series: SeriesKey, chunk: date, stored: CachedChunk, now_ms: int) -> bool:
        return now_ms < self.fresh_until_ms(series, chunk, stored)

    async def load(self, series: SeriesKey, chunks: Sequence[date]) -> list[CachedChunk | None]:
        """``chunks`` as stored, each with its version, read together (so it is the chunk's)."""
        if not chunks:
            return []
        names = [c.isoformat() for c in chunks]
        values = await self._hmget(
            keys.bars_key(series.id), *names, *(VERSION_MARK + name for name in names)
        )
        loaded: list[CachedChunk | None] = []
        for chunk, value, version in zip(chunks, values, values[len(chunks) :], strict=False):
            if value is None:
                loaded.append(None)
                continue
            try:
                data = value.encode() if isinstance(value, str) else value
                stored = CachedChunk.decode(data)
            except (msgspec.DecodeError, ValueError):
                # A chunk written by an incompatible version: refetch it.
                log.warning("bad_chunk_in_redis", series=series.id, chunk=chunk.isoformat())
                loaded.append(None)
                continue
            stored.version = _as_bytes(version)
            loaded.append(stored)
        return loaded

    async def versions(self, series: SeriesKey, fields: Sequence[str]) -> list[bytes | None]:
        """The versions now under ``fields`` (``version_fields``): None once purged or evicted."""
        return [_as_bytes(v) for v in await self._hmget(keys.bars_key(series.id), *fields)]

    async def _hmget(self, key: str, *fields: str) -> list[bytes | str | None]:
        if self.reader is not None:
            values: list[bytes | str | None] = await self.reader.execute("HMGET", key, *fields)
            return values
        return await self.redis.hmget(key, list(fields))

    async def save(self, series: SeriesKey, chunks: dict[date, CachedChunk]) -> None:
        if chunks:
            mapping: dict[str, bytes] = {}
            for chunk, stored in chunks.items():
                mapping[chunk.isoformat()] = stored.encode()
                # In the same command: no reader sees a chunk with its old version.
                stored.version = secrets.token_hex(8).encode()
                mapping[VERSION_MARK + chunk.isoformat()] = stored.version
            await self.redis.hset(keys.bars_key(series.id), mapping=mapping)  # type: ignore[arg-type]


def version_fields(chunks: Sequence[date]) -> tuple[str, ...]:
    return tuple(VERSION_MARK + c.isoformat() for c in chunks)


def _as_bytes(value: bytes | str | None) -> bytes | None:
    return value.encode() if isinstance(value, str) else value
