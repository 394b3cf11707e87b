"""Redis cache of closed history chunks: PostgreSQL is read once per chunk, not per request.

A chunk is a fixed run of buckets of one (direction, source, interval), e.g.
the 60 one-minute points of an hour.  Once a chunk ended ``CLOSED_AFTER_S``
ago its points no longer change, so its encoded points are stored in Redis
and every later request takes them from there.  Only the open chunk at the
end of a range (at most 1,440 minutes, usually 60) is read from PostgreSQL
each time.

The one way a closed minute can still change is a late write: the drainer
buffered bars while PostgreSQL was down and writes them when it is back.
Every cached chunk carries the generation of its (direction, source) that
was current *before* PostgreSQL was read; the sink bumps the generation
*after* it committed late bars, so a chunk read before the commit is never
served again.  A bar counts as late when its minute ended ``LATE_AFTER_S``
ago: less than ``CLOSED_AFTER_S``, so the minutes the sink writes on time
are never in a chunk that may be cached, with a minute to spare for clocks
and slow reads.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

from redis.asyncio import Redis

from ratesvc.courses import keys
from ratesvc.courses.bars import Bar

CLOSED_AFTER_S = 180.0
LATE_AFTER_S = 60.0
CHUNK_TTL_S = 6 * 3600
"""Cached chunks expire: retention pruning then reaches the cache too, and memory stays bounded."""
_MINUTE = timedelta(minutes=1)


def late_pairs(bars: Iterable[Bar], now: datetime) -> set[tuple[str, str]]:
    """(direction, source) of bars whose minute ended ``LATE_AFTER_S`` before ``now``."""
    cutoff = now - timedelta(seconds=LATE_AFTER_S)
    return {(b.direction, b.source) for b in bars if b.minute + _MINUTE <= cutoff}


async def bump_generations(redis: Redis, pairs: Iterable[tuple[str, str]]) -> None:
    pipe = redis.pipeline(transaction=False)
    for direction, source in pairs:
        pipe.incr(keys.history_generation_key(direction, source))
    await pipe.execute()


class ChunkCache:
    """Closed chunks of one (direction, source, interval) in Redis."""

    def __init__(self, redis: Redis, direction: str, source: str, interval: str) -> None:
        self.redis = redis
        self._gen_key = keys.history_generation_key(direction, source)
        self._prefix = keys.history_chunk_key(direction, source, interval, 0)[:-1]

    async def read(self, starts: list[int]) -> tuple[int, dict[int, bytes]]:
        """``(generation, {chunk start: points})`` of the chunks cached at this generation.

        Points are the chunk's JSON points, one per line (empty: no data).
        """
        pipe = self.redis.pipeline(transaction=False)
        pipe.get(self._gen_key)
        if starts:
            pipe.mget([self._prefix + str(start) for start in starts])
        replies = await pipe.execute()
        generation = int(replies[0] or 0)
        found: dict[int, bytes] = {}
        if starts:
            wanted = str(generation).encode()
            for start, raw in zip(starts, replies[1], strict=True):
                if raw is None:
                    continue
                head, _, points = raw.partition(b" ")
                if head == wanted:
                    found[start] = points
        return generation, found

    async def write(self, generation: int, chunks: dict[int, bytes]) -> None:
        if not chunks:
            return
        head = str(generation).encode() + b" "
        pipe = self.redis.pipeline(transaction=False)
        for start, points in chunks.items():
            pipe.set(self._prefix + str(start), head + points, ex=CHUNK_TTL_S)
        await pipe.execute()
