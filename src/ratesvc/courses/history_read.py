"""Where the points of a history answer come from, cheapest first.

1. Closed chunks this process already holds (an LRU of ``LOCAL_CHUNKS``),
   valid while their generation is the one Redis has: one small Redis read
   per request checks it.
2. Closed chunks in the Redis cache (``history_cache``), in the same round trip.
3. PostgreSQL for the rest: closed chunks nobody cached yet (then cached in
   Redis and here), and the open chunk at the end of the range.  The open
   chunk's rows are reused by this process for ``OPEN_REUSE_S`` and read by one
   request at a time, so a hot key costs PostgreSQL one read a second per
   process, not one per request; the newest bucket is therefore at most that
   much behind the drainer.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from dataclasses import dataclass

import asyncpg
from redis.asyncio import Redis

from ratesvc.courses.history_cache import CLOSED_AFTER_S, ChunkCache
from ratesvc.courses.history_store import fetch_points
from ratesvc.log import get_logger
from ratesvc.retry import STORE_ERRORS

log = get_logger("courses.history")

LOCAL_CHUNKS = 2048
"""Closed chunks kept per process (an hour of minutes is about 7 KB: 14 MB at most)."""
OPEN_REUSE_S = 1.0

Rows = list[tuple[int, bytes]]
"""``(t, JSON point)`` ascending."""


@dataclass(frozen=True)
class Span:
    """What to read: one series at one interval, buckets ``from_ms``..``to_ms``."""

    direction: str
    source: str
    interval: str
    interval_ms: int
    chunk_ms: int
    from_ms: int
    to_ms: int


class HistoryReader:
    """The points of history answers, for one process (held in the app's state)."""

    def __init__(self, redis: Redis, db: asyncpg.Pool, retention_s: float) -> None:
        self.redis = redis
        self.db = db
        self.retention_ms = int(retention_s * 1000)
        """Chunks older than this hold nothing (pruned): they are read, never cached, so a
        request for years of nothing cannot fill Redis."""
        self._closed: OrderedDict[tuple[str, str, str, int], tuple[int, bytes]] = OrderedDict()
        self._open: dict[tuple[str, str, str, int], tuple[float, Rows]] = {}
        self._open_reads: dict[tuple[str, str, str, int], asyncio.Task[Rows]] = {}
        self.postgres_reads = 0
        """Queries sent to PostgreSQL (for tests)."""

    async def fragments(self, span: Span, now_ms: int) -> list[bytes]:
        """The answer's points as JSON fragments, each one or more comma-joined points."""
        size = span.chunk_ms
        starts = list(range(span.from_ms - span.from_ms % size, span.to_ms + 1, size))
        closed_before = now_ms - int(CLOSED_AFTER_S * 1000)
        kept_since = now_ms - self.retention_ms
        closed = [s for s in starts if kept_since <= s and s + size <= closed_before]
        generation, chunks = await self._closed_chunks(span, closed)
        # Chunks that have not begun hold nothing: no reads for a range in the future.
        chunks.update({s: [] for s in starts if s > now_ms})
        missing = [s for s in starts if s not in chunks and s + size <= closed_before]
        for run in _runs(missing, size):
            rows = await self._fetch(span, run[0], run[-1] + size)
            fresh = _by_chunk(rows, run, size)
            chunks.update(fresh)
            cacheable = {s: r for s, r in fresh.items() if s >= kept_since}
            if generation is not None and cacheable:
                encoded = {s: b"\n".join(p for _, p in r) for s, r in cacheable.items()}
                await self._keep(span, generation, encoded)
        for start in starts:  # the open chunk, and the one that closed minutes ago
            if start not in chunks:
                chunks[start] = await self._open_chunk(span, start)
        fragments = []
        for start in starts:
            whole = span.from_ms <= start and start + size - 1 <= span.to_ms
            piece = _fragment(chunks[start], span, whole=whole)
            if piece:
                fragments.append(piece)
        return fragments

    def _key(self, span: Span, start: int) -> tuple[str, str, str, int]:
        return (span.direction, span.source, span.interval, start)

    async def _closed_chunks(
        self, span: Span, closed: list[int]
    ) -> tuple[int | None, dict[int, Rows | bytes]]:
        """``(generation, chunks)``: closed chunks held here or in Redis at the series'
        current generation; generation None when Redis is unreachable (nothing cached)."""
        cache = ChunkCache(self.redis, span.direction, span.source, span.interval)
        held = {s: e for s in closed if (e := self._closed.get(self._key(span, s))) is not None}
        try:
            generation, found = await cache.read([s for s in closed if s not in held])
            outdated = [s for s, (held_at, _) in held.items() if held_at != generation]
            if outdated:  # a late write since: what Redis has at this generation, if anything
                _, again = await cache.read(outdated)
                found.update(again)
        except STORE_ERRORS as exc:
            log.warning("history_cache_unavailable", error=repr(exc))
            return None, {}
        chunks: dict[int, Rows | bytes] = {}
        for start, (held_at, points) in held.items():
            if held_at == generation:
                self._closed.move_to_end(self._key(span, start))
                chunks[start] = points
        for start, points in found.items():
            self._remember(span, start, generation, points)
            chunks[start] = points
        return generation, chunks

    async def _keep(self, span: Span, generation: int, chunks: dict[int, bytes]) -> None:
        """Closed chunks just read from PostgreSQL: into Redis and this process."""
        if not chunks:
            return
        cache = ChunkCache(self.redis, span.direction, span.source, span.interval)
        try:
            await cache.write(generation, chunks)
        except STORE_ERRORS as exc:
            log.warning("history_cache_unavailable", error=repr(exc))
            return
        for start, points in chunks.items():
            self._remember(span, start, generation, points)

    def _remember(self, span: Span, start: int, generation: int, points: bytes) -> None:
        self._closed[self._key(span, start)] = (generation, points)
        self._closed.move_to_end(self._key(span, start))
        while len(self._closed) > LOCAL_CHUNKS:
            self._closed.popitem(last=False)

    async def _open_chunk(self, span: Span, start: int) -> Rows:
        key = self._key(span, start)
        held = self._open.get(key)
        if held is not None and time.monotonic() - held[0] <= OPEN_REUSE_S:
            return held[1]
        read = self._open_reads.get(key)
        if read is None:
            read = self._open_reads[key] = asyncio.create_task(self._read_open(span, key))
            read.add_done_callback(lambda _task: self._open_reads.pop(key, None))
        # Shielded: a client that hangs up must not cancel the read others wait for.
        return await asyncio.shield(read)

    async def _read_open(self, span: Span, key: tuple[str, str, str, int]) -> Rows:
        sent_at = time.monotonic()
        rows = await self._fetch(span, key[3], key[3] + span.chunk_ms)
        self._open[key] = (sent_at, rows)
        for stale in [k for k, (at, _) in self._open.items() if sent_at - at > OPEN_REUSE_S]:
            del self._open[stale]
        return rows

    async def _fetch(self, span: Span, start_ms: int, end_ms: int) -> Rows:
        self.postgres_reads += 1
        return await fetch_points(
            self.db,
            direction=span.direction,
            source=span.source,
            interval_ms=span.interval_ms,
            start_ms=start_ms,
            end_ms=end_ms,
        )


def _runs(starts: list[int], size: int) -> list[list[int]]:
    """Consecutive chunk starts grouped, so each run is one PostgreSQL query."""
    runs: list[list[int]] = []
    for start in starts:
        if runs and runs[-1][-1] + size == start:
            runs[-1].append(start)
        else:
            runs.append([start])
    return runs


def _by_chunk(rows: Rows, starts: list[int], size: int) -> dict[int, Rows]:
    chunks: dict[int, Rows] = {s: [] for s in starts}
    for t, point in rows:
        chunks[t - t % size].append((t, point))
    return chunks


def _fragment(chunk: Rows | bytes, span: Span, *, whole: bool) -> bytes:
    if isinstance(chunk, bytes):
        if whole:
            return chunk.replace(b"\n", b",")
        points = [(_t_of(line), line) for line in chunk.split(b"\n") if line]
    else:
        points = chunk
    return b",".join(p for t, p in points if span.from_ms <= t <= span.to_ms)


def _t_of(point: bytes) -> int:
    """``t`` of an encoded point: it is the first field, ``{"t":123,...``."""
    return int(point[5 : point.index(b",")])
