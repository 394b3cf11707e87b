"""The Redis copy of the per-type counts, and acknowledging drained stream entries.

Counters are never incremented in Redis.  They are *raised* to totals read from
PostgreSQL (``max(current, total)``), which makes every update idempotent and
order-free: a replayed batch, two drainers finishing out of order, or a
rebuild can only move a counter to a value PostgreSQL really had.

Redis can lose the hash while the service runs (restarted without
persistence, flushed, evicted).  A rebuild writes every total together with a
``keys.COMPLETE`` mark; a reader that finds no mark asks PostgreSQL instead,
and ``keep_complete`` rebuilds the hash within a second of the loss.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence

import asyncpg
from redis.asyncio import Redis

from ratesvc.cancel import raise_if_cancelling
from ratesvc.events import keys, store
from ratesvc.log import get_logger

log = get_logger("events.counters")

# KEYS[1] counts hash, KEYS[2] stream.  ARGV: group, n, type1, total1, ..., typeN, totalN,
# then the entry ids to acknowledge and delete.  One script, so raising the counters
# and acknowledging the entries happen together or not at all.
_RAISE_AND_ACK = """
local n = tonumber(ARGV[2])
for i = 0, n - 1 do
    local field, total = ARGV[3 + 2 * i], ARGV[4 + 2 * i]
    local current = tonumber(redis.call('HGET', KEYS[1], field) or '0')
    if tonumber(total) > current then
        redis.call('HSET', KEYS[1], field, total)
    end
end
local first = 3 + 2 * n
while first <= #ARGV do
    local last = math.min(first + 999, #ARGV)
    redis.call('XACK', KEYS[2], ARGV[1], unpack(ARGV, first, last))
    redis.call('XDEL', KEYS[2], unpack(ARGV, first, last))
    first = last + 1
end
return n
"""


class Counters:
    def __init__(self, redis: Redis) -> None:
        self._redis = redis
        self._script = redis.register_script(_RAISE_AND_ACK)

    async def raise_and_ack(
        self, totals: Mapping[str, int], entry_ids: Sequence[bytes | str] = ()
    ) -> None:
        """Raise each counter to its total, then XACK and XDEL ``entry_ids``."""
        if not totals and not entry_ids:
            return
        args: list[bytes | str | int] = [keys.GROUP, len(totals)]
        for event_type, total in totals.items():
            args += [event_type, total]
        args += entry_ids
        await self._script(keys=[keys.COUNTS, keys.STREAM], args=args)

    async def rebuild(self, totals: Mapping[str, int]) -> None:
        """Raise every counter to PostgreSQL's totals and mark the hash complete, in one step."""
        await self.raise_and_ack({**totals, keys.COMPLETE: 1})

    async def get(self, event_type: str) -> int | None:
        """The count (0 for a type never seen), or None when Redis lost the counters."""
        value, complete = await self._redis.hmget(keys.COUNTS, [event_type, keys.COMPLETE])
        if complete is None:
            return None
        return int(value) if value is not None else 0

    async def keep_complete(self, db: asyncpg.Pool, interval_s: float = 1.0) -> None:
        """Forever: rebuild the counters from PostgreSQL whenever Redis has lost them."""
        while True:
            raise_if_cancelling()
            if not await self._redis.hexists(keys.COUNTS, keys.COMPLETE):
                totals = await store.all_totals(db)
                await self.rebuild(totals)
                log.warning("events_counts_rebuilt", event_types=len(totals))
            await asyncio.sleep(interval_s)
