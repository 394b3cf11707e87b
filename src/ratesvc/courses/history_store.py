"""Reading minute bars from PostgreSQL, rolled up to the asked interval at query time.

Why at query time and not stored per interval: a coarser bucket is a
GROUP BY over at most 1,440 minutes of one (direction, source) on the primary
key, and each closed chunk is computed once and then served from the Redis
cache (``history_cache``), so stored roll-ups would buy little and cost four
more tables to keep in step with late writes.  bench/history_bench.py measures
the cold (PostgreSQL) and warm (cache) cost of each interval.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import asyncpg
import msgspec

MINUTE_MS = 60_000


class Point(msgspec.Struct, array_like=False):
    t: int
    """Start of the bucket, epoch milliseconds UTC (a multiple of the interval)."""
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    samples: int
    """Rate samples folded into this bucket."""


_encode = msgspec.json.Encoder(decimal_format="number").encode

_MINUTES = """
    SELECT (extract(epoch FROM minute) * 1000)::bigint AS t,
           open, high, low, close, samples
    FROM rate_history
    WHERE direction = $1 AND source = $2 AND minute >= $3 AND minute < $4
    ORDER BY minute"""

_ROLLED_UP = """
    SELECT (extract(epoch FROM date_bin($5, minute, 'epoch')) * 1000)::bigint AS t,
           (array_agg(open ORDER BY minute))[1] AS open,
           max(high) AS high,
           min(low) AS low,
           (array_agg(close ORDER BY minute DESC))[1] AS close,
           sum(samples)::bigint AS samples
    FROM rate_history
    WHERE direction = $1 AND source = $2 AND minute >= $3 AND minute < $4
    GROUP BY 1
    ORDER BY 1"""


def _moment(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


async def fetch_points(
    db: asyncpg.Pool, *, direction: str, source: str, interval_ms: int, start_ms: int, end_ms: int
) -> list[tuple[int, bytes]]:
    """``(t, JSON point)`` of every bucket with data in ``[start_ms, end_ms)``, ascending."""
    args: list[object] = [direction, source, _moment(start_ms), _moment(end_ms)]
    if interval_ms == MINUTE_MS:
        rows = await db.fetch(_MINUTES, *args)
    else:
        rows = await db.fetch(_ROLLED_UP, *args, timedelta(milliseconds=interval_ms))
    return [
        (row[0], _encode(Point(row[0], row[1], row[2], row[3], row[4], row[5]))) for row in rows
    ]
