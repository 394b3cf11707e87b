"""The event drainer: Redis stream -> PostgreSQL in batches -> counters -> acknowledge.

Every replica runs one, as a consumer of one group, so each stream entry goes
to one drainer at a time.  A batch is processed in this order:

1. INSERT the rows ``ON CONFLICT DO NOTHING`` and add the inserted rows to
   ``event_counts`` - one statement, one commit (``store.write_batch``).
2. Raise the Redis counters to the committed totals, XACK and XDEL the
   entries - one Lua script (``Counters.raise_and_ack``).

Crash windows: dying before 1 commits leaves nothing behind and the entries
pending, so they are delivered again.  Dying between 1 and 2 leaves committed
rows and pending entries: the redelivery inserts no row (same dedup keys), and
the statement still returns the current totals of the batch's types, so step 2
repairs the Redis counters.  Step 2 is atomic and idempotent.  Nothing is
acknowledged before it is committed; nothing is counted twice.

Entries a drainer left pending are taken over by another one (or by this
process's next run) after ``events_claim_idle_s`` with XAUTOCLAIM (Redis 6.2+);
a restarted drainer in the same process first finishes its own pending entries.
After each full pass over the pending list, consumers idle that long (and at
least two blocking reads long) with nothing left pending (dead drainers) are
removed from the group
(``consumers.IdleConsumers``).
"""

from __future__ import annotations

import asyncio
import os
import secrets
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg
import msgspec
from redis.asyncio import Redis
from redis.exceptions import RedisError, ResponseError

from ratesvc.cancel import raise_if_cancelling
from ratesvc.events import keys
from ratesvc.events.consumers import IdleConsumers
from ratesvc.events.counters import Counters
from ratesvc.events.model import decode_entry, encode_payload
from ratesvc.events.store import EventRow, write_batch
from ratesvc.log import get_logger
from ratesvc.retry import backoff_delays

log = get_logger("events.drainer")

Entry = tuple[bytes, dict[bytes, bytes]]

TRANSIENT_ERRORS = (
    OSError,
    TimeoutError,
    RedisError,
    asyncpg.InterfaceError,
    asyncpg.PostgresError,
)
"""Store outages: the batch stays pending and is retried with backoff."""
_DEAD_LETTERS_MAX = 10_000


def consumer_name() -> str:
    """Unique per process start, so a restarted process never mistakes old entries for its own."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


async def ensure_group(redis: Redis) -> None:
    """Create the stream and the consumer group if missing (all replicas may race here)."""
    try:
        # "0": entries added before the group existed are drained too.
        await redis.xgroup_create(keys.STREAM, keys.GROUP, id="0", mkstream=True)
    except ResponseError as exc:
        if "BUSYGROUP" not in str(exc):
            raise


@dataclass
class DrainStats:
    batches: int = 0
    rows_inserted: int = 0
    rows_duplicate: int = 0
    dead_lettered: int = 0
    retries: int = 0
    claimed_entries: int = 0
    consumers_removed: int = 0


class EventDrainer:
    def __init__(
        self,
        redis: Redis,
        db: asyncpg.Pool,
        *,
        consumer: str,
        batch_max: int,
        claim_idle_s: float,
        block_ms: int = 1000,
        retry_cap_s: float = 5.0,
    ) -> None:
        self._redis = redis
        self._db = db
        self._counters = Counters(redis)
        self.consumer = consumer
        self._batch_max = batch_max
        self._claim_idle_ms = max(1, int(claim_idle_s * 1000))
        self._block_ms = block_ms
        self._retry_cap_s = retry_cap_s
        # A live drainer blocked in XREADGROUP looks idle for up to block_ms: never take
        # it for dead (it would be harmless - it holds nothing and comes back - but noisy).
        self._idle_consumers = IdleConsumers(redis, max(self._claim_idle_ms, 2 * block_ms))
        self.stats = DrainStats()

    async def run(self) -> None:
        """Drain forever; cancelling it at any point loses and duplicates nothing."""
        await ensure_group(self._redis)
        loop = asyncio.get_running_loop()
        own_pending = True  # a previous run of this drainer may have died mid-batch
        claim_cursor = "0-0"
        next_claim_at = 0.0
        while True:
            raise_if_cancelling()
            if own_pending:
                entries = await self._read("0", block_ms=None)
                own_pending = bool(entries)
            elif loop.time() >= next_claim_at:
                claim_cursor, entries = await self._claim(claim_cursor)
                if claim_cursor == "0-0":  # a full pass over the pending list is done
                    next_claim_at = loop.time() + self._claim_idle_ms / 2000
                    await self._remove_dead_consumers()
            else:
                entries = await self._read(">", block_ms=self._block_ms)
            raise_if_cancelling()
            if entries:
                await self._drain(entries)

    async def _read(self, start: str, block_ms: int | None) -> list[Entry]:
        # RESP2 reply: [[stream, [(id, {field: value}), ...]]], or empty after BLOCK.
        reply: Any = await self._redis.xreadgroup(
            keys.GROUP,
            self.consumer,
            {keys.STREAM: start},
            count=self._batch_max,
            block=block_ms,
        )
        entries: list[Entry] = reply[0][1] if reply else []
        return entries

    async def _claim(self, cursor: str) -> tuple[str, list[Entry]]:
        # Redis 6.2 reply: [next cursor, [(id, fields), ...]] (7.x adds deleted ids).
        reply: Any = await self._redis.xautoclaim(
            keys.STREAM,
            keys.GROUP,
            self.consumer,
            min_idle_time=self._claim_idle_ms,
            start_id=cursor,
            count=self._batch_max,
        )
        next_cursor = reply[0].decode() if isinstance(reply[0], bytes) else str(reply[0])
        entries: list[Entry] = [(i, f) for i, f in reply[1] if i is not None]
        if entries:
            self.stats.claimed_entries += len(entries)
            log.info("events_entries_claimed", entries=len(entries), consumer=self.consumer)
        return next_cursor, entries

    async def _remove_dead_consumers(self) -> None:
        removed = await self._idle_consumers.remove(keep=self.consumer)
        if removed:
            self.stats.consumers_removed += len(removed)
            log.info("events_dead_consumers_removed", consumers=removed)

    async def _drain(self, entries: list[Entry]) -> None:
        rows, corrupt = rows_of(entries)
        ids = [entry_id for entry_id, _fields in entries]
        for entry_id, data, error in corrupt:
            await self._dead_letter(entry_id, data, error)
        delays = backoff_delays(0.1, self._retry_cap_s)
        attempt = 0
        while True:
            try:
                totals = await self._write(rows)
                await self._counters.raise_and_ack(totals, ids)
            except TRANSIENT_ERRORS as exc:
                attempt += 1
                self.stats.retries += 1
                delay = next(delays)
                log.warning(
                    "events_drain_retry",
                    attempt=attempt,
                    delay_s=round(delay, 3),
                    entries=len(ids),
                    error=repr(exc),
                )
                await asyncio.sleep(delay)
            else:
                self.stats.batches += 1
                if attempt:
                    log.info("events_drain_recovered", attempts=attempt + 1)
                return

    async def _write(self, rows: Sequence[EventRow]) -> dict[str, int]:
        if not rows:
            return {}
        try:
            result = await write_batch(self._db, rows)
        except asyncpg.DataError:
            # One row PostgreSQL refuses must not hold back the others: write one by one.
            return await self._write_singly(rows)
        self.stats.rows_inserted += result.inserted
        self.stats.rows_duplicate += len(rows) - result.inserted
        return result.totals

    async def _write_singly(self, rows: Sequence[EventRow]) -> dict[str, int]:
        totals: dict[str, int] = {}
        for row in rows:
            try:
                result = await write_batch(self._db, [row])
            except asyncpg.DataError as exc:
                await self._dead_letter(row.dedup_key.encode(), _row_json(row), repr(exc))
                continue
            self.stats.rows_inserted += result.inserted
            self.stats.rows_duplicate += 1 - result.inserted
            for event_type, total in result.totals.items():
                totals[event_type] = max(total, totals.get(event_type, 0))
        return totals

    async def _dead_letter(self, source: bytes, data: bytes, error: str) -> None:
        self.stats.dead_lettered += 1
        log.error("events_dead_lettered", source=source.decode(errors="replace"), error=error)
        await self._redis.xadd(
            keys.DEAD_LETTERS,
            {b"source": source, b"data": data, b"error": error},
            maxlen=_DEAD_LETTERS_MAX,
            approximate=True,
        )


def rows_of(entries: list[Entry]) -> tuple[list[EventRow], list[tuple[bytes, bytes, str]]]:
    """Rows to insert, and the entries that cannot be decoded (never written by ratesvc)."""
    rows: list[EventRow] = []
    corrupt: list[tuple[bytes, bytes, str]] = []
    for entry_id, fields in entries:
        data = fields.get(keys.ENTRY_FIELD)
        if data is None:  # deleted after it was delivered: already drained
            continue
        try:
            events = decode_entry(data)
        except msgspec.DecodeError as exc:
            corrupt.append((entry_id, data, repr(exc)))
            continue
        stream_id = entry_id.decode()
        for index, event in enumerate(events):
            rows.append(
                EventRow(
                    dedup_key=f"c:{event.event_id}" if event.event_id else f"s:{stream_id}:{index}",
                    event_id=event.event_id,
                    user_id=event.user_id,
                    event_type=event.event_type,
                    timestamp=event.timestamp,
                    payload=encode_payload(event.payload),
                )
            )
    return rows, corrupt


def _row_json(row: EventRow) -> bytes:
    return msgspec.json.encode(row)
