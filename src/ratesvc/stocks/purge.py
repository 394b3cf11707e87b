"""Operator purge: forget a ticker's cached bars (after a split, or to free memory).

A split rewrites every split-adjusted bar of the ticker, so ``adjusted_only``
keeps the unadjusted series, which a split does not change.
"""

from __future__ import annotations

from redis.asyncio import Redis

from ratesvc.stocks import keys

_SCAN_COUNT = 500


async def purge_ticker(redis: Redis, ticker: str, *, adjusted_only: bool = False) -> int:
    """Delete every cached series of ``ticker``; return how many series were deleted."""
    doomed: list[bytes] = []
    async for key in redis.scan_iter(match=keys.ticker_pattern(ticker), count=_SCAN_COUNT):
        if not adjusted_only or key.endswith(b"|a"):
            doomed.append(key)
    deleted = 0
    for start in range(0, len(doomed), _SCAN_COUNT):
        deleted += await redis.delete(*doomed[start : start + _SCAN_COUNT])
    return deleted
