"""Operator purge: forget a ticker's cached bars (after a split, or to free memory).

A split rewrites every split-adjusted bar of the ticker, so ``adjusted_only``
keeps the unadjusted series, which a split does not change.
"""

from __future__ import annotations

from redis.asyncio import Redis

from ratesvc.stocks import keys

_SCAN_COUNT = 500


async def purge_ticker(redis: Redis, ticker: str, *, adjusted_only: bool = False) -> int:
    """Delete every cached series and gateway answer of ``ticker``; return how many went.

    Grouped daily bars hold every ticker's split-adjusted bars, so their
    adjusted answers (and the index made of them) go too.
    """
    doomed: list[bytes] = []
    async for key in redis.scan_iter(match=keys.ticker_pattern(ticker), count=_SCAN_COUNT):
        if not adjusted_only or key.endswith(b"|a"):
            doomed.append(key)
    async for key in redis.scan_iter(match=keys.doc_ticker_pattern(ticker), count=_SCAN_COUNT):
        if not adjusted_only or b"adjusted=false" not in key:
            doomed.append(key)
    for pattern in (keys.DOC_PREFIX + "@grouped|*", keys.GROUPED_INDEX_PREFIX + "*"):
        async for key in redis.scan_iter(match=pattern, count=_SCAN_COUNT):
            if b"adjusted=false" not in key and not key.endswith(b"|u"):
                doomed.append(key)
    deleted = 0
    for start in range(0, len(doomed), _SCAN_COUNT):
        deleted += await redis.delete(*doomed[start : start + _SCAN_COUNT])
    return deleted
