"""Answer an aggregates query from cached chunks, fetching only what is missing.

A page is built from chunks in the query's sort order, a batch at a time:
the first batch is sized to probably hold ``limit`` bars; if the bars run
short (holidays, an illiquid ticker) the next, twice as large batch follows,
a few times at most.  For each batch the chunks that are missing or no
longer fresh are locked (coalescing), merged into runs of adjacent chunks
and fetched with one upstream call per run.  ``sort`` and ``limit`` are
applied here, never upstream, so every query shape shares one cache.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import TypeVar

import msgspec

from ratesvc.log import get_logger
from ratesvc.stocks.budget import UpstreamBudget
from ratesvc.stocks.cache import FOREVER_MS, BarStore
from ratesvc.stocks.chunk import CachedChunk
from ratesvc.stocks.coalesce import ChunkLocks
from ratesvc.stocks.errors import UpstreamError, UpstreamFailure
from ratesvc.stocks.metrics import StocksStats
from ratesvc.stocks.models import Bar, CacheStatus, SeriesKey
from ratesvc.stocks.query import AggsQuery
from ratesvc.stocks.recent import RecentSeries
from ratesvc.stocks.timegrid import (
    CHUNK_SPAN,
    ChunkSpan,
    chunk_last_day,
    chunk_start,
    chunks_between,
    chunks_for,
    eastern_date,
    eastern_midnight_ms,
    eastern_today,
    fetch_block,
    next_chunk,
    open_chunk,
)
from ratesvc.stocks.upstream import AcquireSlot, PolygonClient

log = get_logger("stocks.service")

T = TypeVar("T")

MAX_BATCHES = 4
MAX_CHUNKS_PER_PAGE = 400
MAX_LOCK_ROUNDS = 3


@dataclass
class Page:
    fragments: list[bytes | memoryview]
    """The bars' JSON objects, comma-separated, in pieces to be joined with commas."""
    count: int
    status: str
    cache: CacheStatus
    next_from_ms: int | None = None
    """Set when more bars may follow: the next page's ``from`` (asc) or ``to`` (desc)."""
    versions: dict[date, bytes] | None = None
    """Each chunk read for this page and its version, when none was stale or is still
    open: the page may be kept while the chunks keep them (hot.py)."""
    fresh_until_ms: int = 0
    """When the first of its chunks stops being fresh."""


@dataclass
class _Sources:
    """Where the chunks of one answer came from; decides its X-Cache status."""

    cached: int = 0
    fetched: int = 0
    coalesced: int = 0
    stale: int = 0
    statuses: set[str] = field(default_factory=set)
    versions: dict[date, bytes | None] = field(default_factory=dict)
    """The version of each chunk the answer read, fetched or waited for."""
    open: bool = False
    """The answer covers the chunk still open today."""
    fresh_until_ms: int = FOREVER_MS

    def note(self, store: BarStore, series: SeriesKey, chunks: dict[date, CachedChunk]) -> None:
        for chunk, value in chunks.items():
            self.versions[chunk] = value.version
            self.fresh_until_ms = min(
                self.fresh_until_ms, store.fresh_until_ms(series, chunk, value)
            )

    def kept_versions(self) -> dict[date, bytes] | None:
        """What a page of these chunks depends on, if it may be kept: none stale or open, all
        versioned.  A page of fetched chunks is what the next read of them builds."""
        if self.open or self.stale or not self.versions:
            return None
        versions = {c: v for c, v in self.versions.items() if v is not None}
        return versions if len(versions) == len(self.versions) else None

    def cache_status(self) -> CacheStatus:
        if self.stale:
            return "STALE"
        if self.fetched:
            return "PARTIAL" if self.cached or self.coalesced else "MISS"
        if self.coalesced:
            return "COALESCED"
        return "HIT"


def now_ms() -> int:
    return time.time_ns() // 1_000_000


async def pausing_on_429(budget: UpstreamBudget, call: Awaitable[T]) -> T:
    """Await an upstream call; Polygon's 429 pauses every replica for its Retry-After."""
    try:
        return await call
    except UpstreamError as exc:
        if exc.failure.kind != "rate_limited":
            raise
        paused_s = await budget.pause(exc.failure.retry_after_s)
        failure = msgspec.structs.replace(exc.failure, retry_after_s=paused_s)
        raise UpstreamError(failure) from None


def runs_of(chunks: Sequence[date], span_next: Callable[[date], date]) -> list[list[date]]:
    """Group sorted chunk starts into runs of adjacent chunks (one upstream call each)."""
    runs: list[list[date]] = []
    for chunk in sorted(chunks):
        if runs and span_next(runs[-1][-1]) == chunk:
            runs[-1].append(chunk)
        else:
            runs.append([chunk])
    return runs


class StockBars:
    def __init__(
        self,
        *,
        store: BarStore,
        locks: ChunkLocks,
        client: PolygonClient,
        budget: UpstreamBudget,
        stats: StocksStats,
        budget_wait_s: float,
        recent: RecentSeries | None = None,
    ) -> None:
        self.store = store
        self.locks = locks
        self.client = client
        self.budget = budget
        self.stats = stats
        self.budget_wait_s = budget_wait_s
        self.recent = recent

    async def user_slot(self) -> None:
        await self.budget.acquire(self.budget_wait_s)

    async def answer(self, query: AggsQuery) -> Page:
        series = query.series
        span = CHUNK_SPAN[series.timespan]
        now = now_ms()
        today = eastern_today(now)
        # Polygon has no bars after today, so chunks past it are never asked for.
        last_day = min(eastern_date(query.to_ms), today)
        chunks = chunks_between(eastern_date(query.from_ms), last_day, span)
        if query.sort == "desc":
            chunks.reverse()
        sources = _Sources()
        if open_chunk(today, series.timespan, series.multiplier) in chunks:
            # Bars still coming in: kept warm by the refresher, rewritten every few seconds.
            sources.open = True
            if self.recent is not None:
                await self.recent.touch(series, now)

        fragments: list[bytes | memoryview] = []
        have = 0
        next_from: int | None = None
        batch = min(
            chunks_for(query.limit, series.timespan, series.multiplier), MAX_CHUNKS_PER_PAGE
        )
        taken = 0
        for _ in range(MAX_BATCHES):
            if taken >= len(chunks) or next_from is not None:
                break
            if have >= query.limit:
                next_from = self._boundary(query, chunks[taken], span)
                break
            part = chunks[taken : taken + batch]
            taken += len(part)
            loaded = await self.load_chunks(series, part, sources, self.user_slot)
            for chunk in part:
                if have >= query.limit:
                    next_from = self._boundary(query, chunk, span)
                    break
                fragment, count, left_out = loaded[chunk].take(
                    query.from_ms, query.to_ms, query.sort, query.limit - have
                )
                if count:
                    fragments.append(fragment)
                    have += count
                if left_out is not None:
                    next_from = left_out
                    break
            batch = min(batch * 2, MAX_CHUNKS_PER_PAGE - taken)
            if batch <= 0:
                break
        if next_from is None and taken < len(chunks):
            # Out of batches before out of range: continue at the next unread chunk.
            next_from = self._boundary(query, chunks[taken], span)
        answer = sources.cache_status()
        self.stats.answers[("aggs", answer)] += 1
        status = "DELAYED" if "DELAYED" in sources.statuses else "OK"
        return Page(
            fragments=fragments,
            count=have,
            status=status,
            cache=answer,
            next_from_ms=next_from,
            versions=sources.kept_versions(),
            fresh_until_ms=sources.fresh_until_ms,
        )

    @staticmethod
    def _boundary(query: AggsQuery, chunk: date, span: ChunkSpan) -> int:
        """Where the next page starts when it starts with ``chunk``."""
        if query.sort == "asc":
            return max(eastern_midnight_ms(chunk), query.from_ms)
        return min(eastern_midnight_ms(next_chunk(chunk, span)) - 1, query.to_ms)

    async def refresh(self, series: SeriesKey, chunk: date, acquire: AcquireSlot) -> bool:
        """Refetch one chunk unless another request is already at it; True if refetched."""
        owned, token = await self.locks.try_lock(series, [chunk])
        if not owned:
            return False
        try:
            await self._fetch(series, owned, acquire)
        except UpstreamError as exc:
            # Running out of background budget is not an answer for waiting users:
            # they retry with their own, higher-priority budget.
            passed_on = None if exc.failure.kind == "budget" else exc.failure
            await self.locks.release(series, owned, token, passed_on)
            raise
        await self.locks.release(series, owned, token)
        return True

    def _fresh(
        self, series: SeriesKey, chunks: Sequence[date], stored: Sequence[CachedChunk | None]
    ) -> dict[date, CachedChunk]:
        now = now_ms()
        return {
            chunk: value
            for chunk, value in zip(chunks, stored, strict=True)
            if value is not None and self.store.is_fresh(series, chunk, value, now)
        }

    async def load_chunks(
        self,
        series: SeriesKey,
        chunks: Sequence[date],
        sources: _Sources,
        acquire: AcquireSlot,
    ) -> dict[date, CachedChunk]:
        """Every chunk in ``chunks``: fresh from Redis, fetched, waited for, or stale on error."""
        stored = await self.store.load(series, chunks)
        result = self._fresh(series, chunks, stored)
        sources.cached += len(result)
        self.stats.chunks["cache"] += len(result)
        pending = [c for c in chunks if c not in result]
        if not pending:
            sources.statuses.update(value.status for value in result.values())
            sources.note(self.store, series, result)
            return result

        failure = await self._resolve(series, pending, result, sources, acquire)
        pending = [c for c in pending if c not in result]
        if pending:
            fallback = {c: v for c, v in zip(chunks, stored, strict=True) if v is not None}
            if failure is None:
                failure = UpstreamFailure(kind="unavailable", detail="Polygon's answer was lost")
            if not all(c in fallback for c in pending):
                raise UpstreamError(failure)
            # Stale beats an error: these bars were right when they were fetched.
            result.update({c: fallback[c] for c in pending})
            sources.stale += len(pending)
            self.stats.chunks["stale"] += len(pending)
            log.info("serving_stale", series=series.id, chunks=len(pending), why=failure.kind)
        sources.statuses.update(value.status for value in result.values())
        sources.note(self.store, series, result)
        return result

    async def _resolve(
        self,
        series: SeriesKey,
        pending: list[date],
        result: dict[date, CachedChunk],
        sources: _Sources,
        acquire: AcquireSlot,
    ) -> UpstreamFailure | None:
        """Fetch the pending chunks nobody else is fetching, wait for the rest.

        Adds what arrives to ``result``; returns the failure that left chunks out.
        """
        for _ in range(MAX_LOCK_ROUNDS):
            wanted = await self._with_read_ahead(series, pending)
            owned, token = await self.locks.try_lock(series, wanted)
            if owned:
                try:
                    fetched = await self._fetch(series, owned, acquire)
                except UpstreamError as exc:
                    await self.locks.release(series, owned, token, exc.failure)
                    return exc.failure
                await self.locks.release(series, owned, token)
                asked = {c: v for c, v in fetched.items() if c in pending}
                result.update(asked)
                sources.fetched += len(asked)
                self.stats.chunks["upstream"] += len(asked)
                self.stats.chunks["read_ahead"] += len(fetched) - len(asked)
            others = [c for c in pending if c not in owned]
            if not others:
                return None
            self.stats.coalesced_waits += 1
            if not await self.locks.wait_unlocked(series, others):
                return UpstreamFailure(kind="timeout", detail="timed out waiting for Polygon")
            got = self._fresh(series, others, await self.store.load(series, others))
            result.update(got)
            sources.coalesced += len(got)
            pending = [c for c in others if c not in got]
            if not pending:
                return None
            if failure := await self.locks.failure(series, pending):
                return failure
            # The fetch we waited for vanished (its lock expired): try to take it over.
        return None

    async def _with_read_ahead(self, series: SeriesKey, pending: list[date]) -> list[date]:
        """``pending`` plus the other missing or stale chunks of their fetch blocks.

        Never chunks after today (Polygon has nothing there yet).
        """
        span = CHUNK_SPAN[series.timespan]
        today_chunk = chunk_start(eastern_today(now_ms()), span)
        asked = set(pending)
        around = sorted(
            {
                chunk
                for wanted in pending
                for chunk in fetch_block(wanted, series.timespan, series.multiplier)
                if chunk not in asked and chunk <= today_chunk
            }
        )
        if not around:
            return pending
        fresh = self._fresh(series, around, await self.store.load(series, around))
        missing = [c for c in around if c not in fresh]
        # Only chunks adjacent to a run already being fetched: read-ahead must
        # widen calls, never add one.
        chosen = set(asked)
        grown = True
        while grown:
            grown = False
            for chunk in missing:
                before = chunk_start(chunk - timedelta(days=1), span)
                if chunk not in chosen and (before in chosen or next_chunk(chunk, span) in chosen):
                    chosen.add(chunk)
                    grown = True
        return sorted(chosen)

    async def _fetch(
        self, series: SeriesKey, chunks: Sequence[date], acquire: AcquireSlot
    ) -> dict[date, CachedChunk]:
        """Fetch ``chunks`` (already locked by us) with one upstream call per adjacent run."""
        span = CHUNK_SPAN[series.timespan]
        fetched: dict[date, CachedChunk] = {}
        for run in runs_of(chunks, lambda c: next_chunk(c, span)):
            got = await pausing_on_429(
                self.budget,
                self.client.fetch_range(series, run[0], chunk_last_day(run[-1], span), acquire),
            )
            fetched_at = now_ms()
            grouped: dict[date, list[Bar]] = {chunk: [] for chunk in run}
            # Sorted and deduplicated by time, whatever order the pages came in.
            ordered = sorted({bar.t: bar for bar in got.bars}.values(), key=lambda b: b.t)
            for chunk, group in itertools.groupby(
                ordered, key=lambda b: chunk_start(eastern_date(b.t), span)
            ):
                # Polygon answers the bar that holds the run's first day whole, so
                # it can start in the chunk before, which this call did not cover
                # completely: dropped.
                if chunk in grouped:
                    grouped[chunk].extend(group)
            by_chunk = {
                chunk: CachedChunk.from_bars(fetched_at, got.status, bars)
                for chunk, bars in grouped.items()
            }
            await self.store.save(series, by_chunk)
            fetched.update(by_chunk)
        return fetched
