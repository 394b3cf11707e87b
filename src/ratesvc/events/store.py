"""PostgreSQL side of the events: insert a batch once, keep per-type counts with it.

One statement inserts the rows (``ON CONFLICT DO NOTHING`` on the dedup key, so
a redelivered entry or a retried ``event_id`` adds nothing) and adds exactly the
rows it inserted to ``event_counts``.  Being one statement, it commits or fails
as a whole: ``event_counts`` always equals ``count(*)`` of ``events`` per type.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import asyncpg

_WRITE_BATCH = """
WITH batch AS (
    SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[], $4::text[], $5::bigint[], $6::text[])
        AS b (dedup_key, event_id, user_id, event_type, ts, payload)
), inserted AS (
    INSERT INTO events (dedup_key, event_id, user_id, event_type, occurred_at, payload)
    SELECT dedup_key, event_id, user_id, event_type, to_timestamp(ts), payload::jsonb FROM batch
    ON CONFLICT (dedup_key) DO NOTHING
    RETURNING event_type
), counted AS (
    SELECT event_type, count(*) AS n FROM inserted GROUP BY event_type
), added AS (
    INSERT INTO event_counts AS c (event_type, count)
    -- Fixed lock order, so two drainers touching the same types cannot deadlock.
    SELECT event_type, n FROM counted ORDER BY event_type
    ON CONFLICT (event_type) DO UPDATE SET count = c.count + EXCLUDED.count
    RETURNING c.event_type, c.count
)
SELECT event_type, a.count, k.n AS added FROM added AS a JOIN counted AS k USING (event_type)
UNION ALL
-- Types of this batch that gained no row (a redelivery): their current totals, so the
-- Redis copy is repaired even when the first delivery committed and then died.
SELECT event_type, count, 0 FROM event_counts
WHERE event_type = ANY($7::text[]) AND event_type NOT IN (SELECT event_type FROM added)
"""


@dataclass(frozen=True, slots=True)
class EventRow:
    dedup_key: str
    event_id: str | None
    user_id: int
    event_type: str
    timestamp: int
    payload: str | None


@dataclass(frozen=True, slots=True)
class BatchResult:
    totals: dict[str, int]
    """event_type -> its row count after this batch (or a little before, see the query)."""
    inserted: int
    """Rows this batch added; the others were already there."""


async def write_batch(
    db: asyncpg.Pool | asyncpg.Connection, rows: Sequence[EventRow]
) -> BatchResult:
    """Insert ``rows`` (idempotently) and return the per-type totals."""
    rows = sorted(rows, key=lambda r: r.dedup_key)  # fixed lock order across drainers
    records = await db.fetch(
        _WRITE_BATCH,
        [r.dedup_key for r in rows],
        [r.event_id for r in rows],
        [r.user_id for r in rows],
        [r.event_type for r in rows],
        [r.timestamp for r in rows],
        [r.payload for r in rows],
        sorted({r.event_type for r in rows}),
    )
    return BatchResult(
        totals={r["event_type"]: r["count"] for r in records},
        inserted=sum(r["added"] for r in records),
    )


async def all_totals(db: asyncpg.Pool) -> dict[str, int]:
    """Every event_type's row count, to rebuild the Redis counters."""
    records = await db.fetch("SELECT event_type, count FROM event_counts")
    return {r["event_type"]: r["count"] for r in records}


async def total(db: asyncpg.Pool, event_type: str) -> int:
    """One event_type's row count (0 when none was stored)."""
    count: int | None = await db.fetchval(
        "SELECT count FROM event_counts WHERE event_type = $1", event_type
    )
    return count or 0
