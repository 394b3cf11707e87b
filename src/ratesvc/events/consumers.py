"""Forget drainers that died: idle consumers with nothing pending leave the group.

Every process start is a new consumer name (``drainer.consumer_name``), so a
group that lives through many restarts, crashes and scale-downs would gather
dead consumers for ever: ``XINFO CONSUMERS`` grows, and so does the group's
memory.  Their entries are taken over with XAUTOCLAIM; once a dead consumer
holds none, ``XGROUP DELCONSUMER`` removes it.

DELCONSUMER also drops whatever the consumer still has pending, and those
entries would then never be delivered again.  So the check and the removal run
in one Lua script: nothing can be delivered to the consumer between reading its
pending count and deleting it.  A live drainer touches its consumer at least
once per blocking read (a second), so it is never idle for long; should one be
removed anyway (stuck on a store outage after its batch was claimed), it holds
nothing and its next XREADGROUP creates it again.
"""

from __future__ import annotations

from typing import Any

from redis.asyncio import Redis

from ratesvc.events import keys

# XINFO CONSUMERS (RESP2): one flat [field, value, ...] list per consumer.
_REMOVE_IDLE = """
local removed = {}
for _, info in ipairs(redis.call('XINFO', 'CONSUMERS', KEYS[1], ARGV[1])) do
  local fields = {}
  for i = 1, #info, 2 do fields[info[i]] = info[i + 1] end
  if fields['name'] ~= ARGV[3] and fields['pending'] == 0
      and fields['idle'] >= tonumber(ARGV[2]) then
    redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], fields['name'])
    removed[#removed + 1] = fields['name']
  end
end
return removed
"""


class IdleConsumers:
    """Removes the group's consumers idle for ``min_idle_ms`` with no pending entry."""

    def __init__(self, redis: Redis, min_idle_ms: int) -> None:
        self._script: Any = redis.register_script(_REMOVE_IDLE)
        self._min_idle_ms = min_idle_ms

    async def remove(self, keep: str) -> list[str]:
        """Remove them (never ``keep``, the caller's own consumer); their names."""
        names: list[bytes] = await self._script(
            keys=[keys.STREAM], args=[keys.GROUP, self._min_idle_ms, keep]
        )
        return [name.decode() for name in names]
