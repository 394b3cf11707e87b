"""Background refresher: keeps the open session of recently viewed series fresh.

Every ``interval_s`` it looks at the series users asked for lately and
refetches the chunk with today's bar of each one that will go stale soon,
most recently viewed first, as long as the budget has a background slot
(users' requests always leave it one).  It writes the cache directly,
through the same locked fetch a request makes, rather than through the
update queue: the lock must cover the write, so that a request waiting on it
finds the bars.
"""

from __future__ import annotations

import asyncio

from ratesvc.log import get_logger
from ratesvc.stocks.budget import UpstreamBudget
from ratesvc.stocks.cache import BarStore
from ratesvc.stocks.errors import UpstreamError, UpstreamFailure
from ratesvc.stocks.metrics import StocksStats
from ratesvc.stocks.recent import RecentSeries
from ratesvc.stocks.service import StockBars, now_ms
from ratesvc.stocks.timegrid import eastern_today, open_chunk

log = get_logger("stocks.refresher")

REFRESH_AT_AGE = 0.7
"""Refresh a chunk once it is this fraction of its TTL old, so users still hit."""


class Refresher:
    def __init__(
        self,
        *,
        bars: StockBars,
        store: BarStore,
        recent: RecentSeries,
        budget: UpstreamBudget,
        stats: StocksStats,
        interval_s: float,
    ) -> None:
        self.bars = bars
        self.store = store
        self.recent = recent
        self.budget = budget
        self.stats = stats
        self.interval_s = interval_s

    async def run(self) -> None:
        while True:
            await self.refresh_once()
            await asyncio.sleep(self.interval_s)

    async def _background_slot(self) -> None:
        if not await self.budget.try_acquire_background():
            raise UpstreamError(UpstreamFailure(kind="budget", detail="no background budget"))

    async def refresh_once(self) -> int:
        """One pass over the recent series; returns how many chunks were refetched."""
        now = now_ms()
        refreshed = 0
        refresh_after_ms = self.store.open_ttl_ms * REFRESH_AT_AGE
        for series in await self.recent.active(now):
            # The chunk holding the bar still open today, which for a week that
            # began before the 1st of a decade is the decade before.
            chunk = open_chunk(eastern_today(now), series.timespan, series.multiplier)
            [stored] = await self.store.load(series, [chunk])
            if stored is not None and now - stored.fetched_ms < refresh_after_ms:
                continue
            try:
                done = await self.bars.refresh(series, chunk, self._background_slot)
            except UpstreamError as exc:
                if exc.failure.kind != "budget":
                    log.info("refresh_failed", series=series.id, why=exc.failure.kind)
                break  # out of budget or Polygon in trouble: try again next pass
            if done:
                refreshed += 1
                self.stats.refreshes += 1
        return refreshed
