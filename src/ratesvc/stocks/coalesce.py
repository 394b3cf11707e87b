"""Request coalescing across processes: a short Redis lock per chunk or document.

The request that takes a chunk's lock fetches it; every other request,
in this process or another replica, waits for the lock to go and then reads
the chunk from Redis.  If the fetch failed, the owner leaves the failure
under a short-lived key before unlocking so that waiters give the same
answer instead of calling Polygon again.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Sequence
from datetime import date

import msgspec
from redis.asyncio import Redis

from ratesvc.stocks import keys
from ratesvc.stocks.errors import UpstreamFailure
from ratesvc.stocks.models import SeriesKey

FAILURE_TTL_MS = 5_000
_POLL_FIRST_S = 0.005
_POLL_MAX_S = 0.05

# Delete each lock only if it still holds our token (it may have expired and been retaken).
_RELEASE = """
local released = 0
for i, key in ipairs(KEYS) do
  if redis.call('GET', key) == ARGV[1] then
    redis.call('DEL', key)
    released = released + 1
  end
end
return released
"""

_encode = msgspec.json.Encoder().encode
_decode_failure = msgspec.json.Decoder(UpstreamFailure).decode


class NamedLocks:
    """Locks and recorded failures by name: a chunk (``series|chunk``) or a document."""

    def __init__(self, redis: Redis, *, ttl_s: float) -> None:
        self.redis = redis
        self.ttl_ms = int(ttl_s * 1000)
        self._release = redis.register_script(_RELEASE)

    async def try_lock(self, names: Sequence[str]) -> tuple[list[str], str]:
        """Lock whichever of ``names`` nobody else holds; return them and our token."""
        token = secrets.token_hex(8)
        async with self.redis.pipeline(transaction=False) as pipe:
            for name in names:
                pipe.set(keys.LOCK_PREFIX + name, token, nx=True, px=self.ttl_ms)
            results = await pipe.execute()
        return [name for name, ok in zip(names, results, strict=True) if ok], token

    async def release(
        self, names: Sequence[str], token: str, failure: UpstreamFailure | None = None
    ) -> None:
        if not names:
            return
        if failure is not None:
            encoded = _encode(failure)
            async with self.redis.pipeline(transaction=False) as pipe:
                for name in names:
                    pipe.set(keys.FAILURE_PREFIX + name, encoded, px=FAILURE_TTL_MS)
                await pipe.execute()
        await self._release(keys=[keys.LOCK_PREFIX + n for n in names], args=[token])

    async def wait_unlocked(self, names: Sequence[str]) -> bool:
        """Wait until none of ``names`` is locked; False if that took longer than a lock lives."""
        lock_keys = [keys.LOCK_PREFIX + n for n in names]
        deadline = time.monotonic() + self.ttl_ms / 1000 + 1
        delay = _POLL_FIRST_S
        while await self.redis.exists(*lock_keys):
            if time.monotonic() > deadline:
                return False
            await asyncio.sleep(delay)
            delay = min(delay * 2, _POLL_MAX_S)
        return True

    async def failure(self, names: Sequence[str]) -> UpstreamFailure | None:
        """The failure another request recorded for any of ``names``, if it is recent."""
        if not names:
            return None
        raw = await self.redis.mget([keys.FAILURE_PREFIX + n for n in names])
        for value in raw:
            if value is not None:
                try:
                    return _decode_failure(value)
                except msgspec.DecodeError:
                    continue
        return None


def _chunk_names(series: SeriesKey, chunks: Sequence[date]) -> list[str]:
    return [f"{series.id}|{chunk.isoformat()}" for chunk in chunks]


class ChunkLocks:
    """``NamedLocks`` for the chunks of a series."""

    def __init__(self, redis: Redis, *, ttl_s: float) -> None:
        self.named = NamedLocks(redis, ttl_s=ttl_s)

    async def try_lock(self, series: SeriesKey, chunks: Sequence[date]) -> tuple[list[date], str]:
        """Lock whichever of ``chunks`` nobody else is fetching; return them and our token."""
        names = _chunk_names(series, chunks)
        owned, token = await self.named.try_lock(names)
        mine = set(owned)
        return [c for c, n in zip(chunks, names, strict=True) if n in mine], token

    async def release(
        self,
        series: SeriesKey,
        chunks: Sequence[date],
        token: str,
        failure: UpstreamFailure | None = None,
    ) -> None:
        await self.named.release(_chunk_names(series, chunks), token, failure)

    async def wait_unlocked(self, series: SeriesKey, chunks: Sequence[date]) -> bool:
        return await self.named.wait_unlocked(_chunk_names(series, chunks))

    async def failure(self, series: SeriesKey, chunks: Sequence[date]) -> UpstreamFailure | None:
        return await self.named.failure(_chunk_names(series, chunks))
