"""The read side handlers use: this process's copy of the latest quotes, never older than ``max_age_s``.

Reading Redis on every request costs a redis.asyncio round trip, about 110 µs
of CPU: more than the rest of the request.  So each process keeps a copy of
the ``ratesvc:quotes`` hash the drainer writes and reads it again only when
the copy is older than ``max_age_s`` (50 ms by default).  At most one read is
in flight: requests arriving meanwhile wait for that read instead of
starting their own.

Why a value written to Redis reaches handlers within ``max_age_s``: a copy is
stamped with the moment its read was *sent*, so it holds at least every write
that completed before that moment, and it is used only until that moment plus
``max_age_s``.  At 18,000 requests/s this is 20 reads a second, and needs no
subscription that could silently lag.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from dataclasses import dataclass

from redis.asyncio import Redis

from ratesvc.courses import keys
from ratesvc.courses.quotes_hash import decode_quotes
from ratesvc.models import Quote

DEFAULT_MAX_AGE_S = 0.05


@dataclass(frozen=True, slots=True)
class QuoteCopy:
    read_at: float
    """``time.monotonic()`` when the read was sent."""
    generation: int
    """Changes when the quotes do: what was computed from an older generation is outdated."""
    raw: Mapping[bytes | str, bytes | str]
    quotes: dict[str, Quote]


class QuoteReader:
    """This process's copy of the quotes hash, read from Redis at most every ``max_age_s``."""

    def __init__(self, redis: Redis, max_age_s: float = DEFAULT_MAX_AGE_S) -> None:
        self.redis = redis
        self.max_age_s = max_age_s
        self._copy: QuoteCopy | None = None
        self._read: asyncio.Task[QuoteCopy] | None = None
        self.reads = 0
        """Redis reads made (for tests and metrics)."""

    async def copy(self) -> QuoteCopy:
        """A copy at most ``max_age_s`` old; raises what the Redis client raises when one is due and Redis cannot be read."""
        copy = self._copy
        if copy is None or time.monotonic() - copy.read_at > self.max_age_s:
            copy = await self._fresh_copy()
        return copy

    async def _fresh_copy(self) -> QuoteCopy:
        read = self._read
        if read is None:
            read = self._read = asyncio.create_task(self._read_quotes())
            read.add_done_callback(self._read_done)
        # Shielded: a client that hangs up must not cancel the read others wait for.
        return await asyncio.shield(read)

    def _read_done(self, _task: asyncio.Task[QuoteCopy]) -> None:
        self._read = None

    async def _read_quotes(self) -> QuoteCopy:
        read_at = time.monotonic()
        raw = await self.redis.hgetall(keys.QUOTES)
        self.reads += 1
        previous = self._copy
        if previous is not None and previous.raw == raw:
            copy = QuoteCopy(read_at, previous.generation, previous.raw, previous.quotes)
        else:
            generation = 0 if previous is None else previous.generation + 1
            copy = QuoteCopy(read_at, generation, raw, decode_quotes(raw))
        if self._copy is None or read_at >= self._copy.read_at:
            self._copy = copy
        return copy
