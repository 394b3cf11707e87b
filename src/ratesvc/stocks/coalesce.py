"""Request coalescing across processes: a short Redis lock per (series, chunk).

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


class ChunkLocks:
    def __init__(self, redis: Redis, *, ttl_s: float) -> None:
        self.redis = redis
        self.ttl_ms = int(ttl_s * 1000)
        self._release = redis.register_script(_RELEASE)

    async def try_lock(self, series: SeriesKey, chunks: Sequence[date]) -> tuple[list[date], str]:
        """Lock whichever of ``chunks`` nobody else is fetching; return them and our token."""
        token = secrets.token_hex(8)
        async with self.redis.pipeline(transaction=False) as pipe:
            for chunk in chunks:
                pipe.set(
                    keys.lock_key(series.id, chunk.isoformat()), token, nx=True, px=self.ttl_ms
                )
            results = await pipe.execute()
        return [chunk for chunk, ok in zip(chunks, results, strict=True) if ok], token

    async def release(
        self,
        series: SeriesKey,
        chunks: Sequence[date],
        token: str,
        failure: UpstreamFailure | None = None,
    ) -> None:
        if not chunks:
            return
        if failure is not None:
            encoded = _encode(failure)
            async with self.redis.pipeline(transaction=False) as pipe:
                for chunk in chunks:
                    pipe.set(
                        keys.failure_key(series.id, chunk.isoformat()), encoded, px=FAILURE_TTL_MS
                    )
                await pipe.execute()
        lock_keys = [keys.lock_key(series.id, c.isoformat()) for c in chunks]
        await self._release(keys=lock_keys, args=[token])

    async def wait_unlocked(self, series: SeriesKey, chunks: Sequence[date]) -> bool:
        """Wait until none of ``chunks`` is locked; False if that took longer than a lock lives."""
        lock_keys = [keys.lock_key(series.id, c.isoformat()) for c in chunks]
        deadline = time.monotonic() + self.ttl_ms / 1000 + 1
        delay = _POLL_FIRST_S
        while await self.redis.exists(*lock_keys):
            if time.monotonic() > deadline:
                return False
            await asyncio.sleep(delay)
            delay = min(delay * 2, _POLL_MAX_S)
        return True

    async def failure(self, series: SeriesKey, chunks: Sequence[date]) -> UpstreamFailure | None:
        """The failure another request recorded for any of ``chunks``, if it is recent."""
        if not chunks:
            return None
        raw = await self.redis.mget([keys.failure_key(series.id, c.isoformat()) for c in chunks])
        for value in raw:
            if value is not None:
                try:
                    return _decode_failure(value)
                except msgspec.DecodeError:
                    continue
        return None
