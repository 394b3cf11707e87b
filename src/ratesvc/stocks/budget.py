"""The Polygon call budget, shared by every replica through Redis.

Polygon counts calls per minute, so the budget is a rolling window: a call
slot is free when fewer than ``calls`` calls were made in the last
``window_s``.  This is a token bucket whose tokens come back one window after
they were spent; unlike a bucket that refills continuously it never lets
more than ``calls`` calls into any window, which is what the plan allows.
Time is Redis's own clock, so replicas' clocks need not agree.

Users go first: a background refresh only takes a slot when at least
``reserve`` more stay free and no user request is waiting.  After a 429 every
replica pauses for Polygon's Retry-After.

Each process also remembers its own calls in the window and its last pause,
and hands them to every slot request: if Redis lost the window (restarted
empty, flushed), each replica's next request puts its calls back.  One
replica alone is exact; with several, calls of the others that have not asked
since the loss are missing until they do (a Polygon 429 then pauses everyone).
"""

from __future__ import annotations

import asyncio
import secrets
import time

from redis.asyncio import Redis

from ratesvc.stocks import keys
from ratesvc.stocks.errors import UpstreamError, UpstreamFailure

# KEYS: calls zset, waiting flag, pause-until.  ARGV: calls, window ms, reserve,
# member, background (1/0), this process's pause-until, then member/score pairs of
# this process's own calls in the window.  Returns {0, now} when a slot was taken,
# else {ms to wait, now}.  The process's own calls and pause are put back first,
# so a Redis that lost the keys (restarted empty) cannot open a fresh window.
_TAKE = """
local now_parts = redis.call('TIME')
local now = tonumber(now_parts[1]) * 1000 + math.floor(tonumber(now_parts[2]) / 1000)
local mine_paused = tonumber(ARGV[6])
local paused = tonumber(redis.call('GET', KEYS[3]) or '0')
if mine_paused > paused and mine_paused > now then
  redis.call('SET', KEYS[3], mine_paused, 'PX', mine_paused - now)
  paused = mine_paused
end
if paused > now then return {paused - now, now} end
local background = ARGV[5] == '1'
if background and redis.call('EXISTS', KEYS[2]) == 1 then
  return {math.max(1, redis.call('PTTL', KEYS[2])), now}
end
local limit = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
for i = 7, #ARGV, 2 do
  local score = tonumber(ARGV[i + 1])
  if score > now - window then redis.call('ZADD', KEYS[1], 'NX', score, ARGV[i]) end
end
local used = redis.call('ZCARD', KEYS[1])
local need = 1
if background then need = 1 + tonumber(ARGV[3]) end
if limit - used >= need then
  redis.call('ZADD', KEYS[1], now, ARGV[4])
  redis.call('PEXPIRE', KEYS[1], window)
  return {0, now}
end
local index = used - limit + need - 1
if index < 0 then index = 0 end
local oldest = redis.call('ZRANGE', KEYS[1], index, index, 'WITHSCORES')
if oldest[2] == nil then return {1, now} end
return {math.max(1, tonumber(oldest[2]) + window - now), now}
"""

# KEYS: pause-until.  ARGV: pause ms.  Extends (never shortens) the pause.
_PAUSE = """
local now_parts = redis.call('TIME')
local now = tonumber(now_parts[1]) * 1000 + math.floor(tonumber(now_parts[2]) / 1000)
local until_ms = now + tonumber(ARGV[1])
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
if until_ms > current then
  redis.call('SET', KEYS[1], until_ms, 'PX', tonumber(ARGV[1]))
end
return until_ms
"""


class UpstreamBudget:
    def __init__(self, redis: Redis, *, calls: int, window_s: float) -> None:
        self.redis = redis
        self.calls = calls
        self.window_ms = max(1, int(window_s * 1000))
        # One slot stays for users when there are at least two.
        self.reserve = 1 if calls >= 2 else 0
        self._take = redis.register_script(_TAKE)
        self._pause = redis.register_script(_PAUSE)
        # This process's own calls in the window and its last pause, on Redis's clock:
        # what it puts back if Redis loses the shared copy.
        self._mine: dict[str, int] = {}
        self._paused_until_ms = 0

    @property
    def slot_interval_s(self) -> float:
        return self.window_ms / 1000 / self.calls

    async def _try(self, *, background: bool) -> int:
        member = f"{time.time_ns()}:{secrets.token_hex(4)}"
        keys_ = [keys.BUDGET_CALLS, keys.BUDGET_WAITING, keys.BUDGET_PAUSED]
        args: list[str | int] = [
            self.calls,
            self.window_ms,
            self.reserve,
            member,
            1 if background else 0,
            self._paused_until_ms,
        ]
        for mine, score in self._mine.items():
            args += [mine, score]
        wait_ms, now_ms = (int(n) for n in await self._take(keys=keys_, args=args))
        self._mine = {m: t for m, t in self._mine.items() if t > now_ms - self.window_ms}
        if wait_ms == 0:
            self._mine[member] = now_ms
        return wait_ms

    async def acquire(self, max_wait_s: float) -> None:
        """Take a slot for a user request, waiting up to ``max_wait_s``; else UpstreamError."""
        deadline = time.monotonic() + max_wait_s
        while True:
            wait_ms = await self._try(background=False)
            if wait_ms == 0:
                return
            wait_s = wait_ms / 1000
            if time.monotonic() + wait_s > deadline:
                raise UpstreamError(
                    UpstreamFailure(
                        kind="budget",
                        detail="the service's Polygon call budget is used up; retry later",
                        retry_after_s=wait_s,
                    )
                )
            # Tell background refreshers, in every replica, to leave the slot to us.
            await self.redis.set(keys.BUDGET_WAITING, 1, px=wait_ms + 1000)
            await asyncio.sleep(wait_s)

    async def try_acquire_background(self) -> bool:
        """Take a slot for a background refresh if users leave one; never waits."""
        return await self._try(background=True) == 0

    async def pause(self, seconds: float | None) -> float:
        """Polygon said 429: every replica stops calling for Retry-After (or one slot).

        Returns the pause in seconds, for the client's own Retry-After.
        """
        pause_s = seconds if seconds is not None else self.slot_interval_s
        until_ms = await self._pause(keys=[keys.BUDGET_PAUSED], args=[max(1, int(pause_s * 1000))])
        self._paused_until_ms = max(self._paused_until_ms, int(until_ms))
        return pause_s
