"""Which series users looked at lately, so the refresher knows what to keep warm."""

from __future__ import annotations

import msgspec
from redis.asyncio import Redis

from ratesvc.stocks import keys
from ratesvc.stocks.models import SeriesKey

MAX_TRACKED = 1000


class RecentSeries:
    def __init__(self, redis: Redis, *, keep_s: float) -> None:
        self.redis = redis
        self.keep_ms = int(keep_s * 1000)

    async def touch(self, series: SeriesKey, now_ms: int) -> None:
        await self.redis.zadd(keys.RECENT, {series.id: now_ms})

    async def active(self, now_ms: int) -> list[SeriesKey]:
        """Series asked for within ``keep_s``, most recent first; older ones are forgotten."""
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.zremrangebyscore(keys.RECENT, "-inf", now_ms - self.keep_ms)
            # Bound the set even if many distinct series are requested at once.
            pipe.zremrangebyrank(keys.RECENT, 0, -MAX_TRACKED - 1)
            pipe.zrevrange(keys.RECENT, 0, -1)
            *_, members = await pipe.execute()
        found = []
        for member in members:
            try:
                found.append(SeriesKey.from_id(member.decode()))
            except (ValueError, msgspec.ValidationError):
                continue
        return found
