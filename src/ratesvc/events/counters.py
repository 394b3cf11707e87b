"""The Redis copy of the per-type counts, and acknowledging drained stream entries.

Counters are never incremented in Redis.  They are *raised* to totals read from
PostgreSQL (``max(current, total)``), which makes every update idempotent and
order-free: a replayed batch, two drainers finishing out of order, or a
start-up rebuild can only move a counter to a value PostgreSQL really had.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from redis.asyncio import Redis

from ratesvc.events import keys

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

    async def get(self, event_type: str) -> int:
        value = await self._redis.hget(keys.COUNTS, event_type)
        return int(value) if value is not None else 0
