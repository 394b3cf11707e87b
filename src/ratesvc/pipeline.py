"""The rates pipeline: sources -> bounded queue of quotes -> one drainer -> sinks.

Sources call ``UpdateQueue.offer`` which never blocks, so a slow store
never stalls a websocket read; a full queue drops the quote and counts it
(a newer price supersedes a dropped one).  The drainer takes batches and hands
each batch to every sink; a sink's failure is logged and isolated.

The queue carries quotes and nothing else.  Time passing is the drainer's
business: when no quote arrives for ``idle_s`` it hands the sinks an empty
batch, which is when they render again (a source turns stale without sending
anything) and retry what they hold back.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import KW_ONLY, dataclass, field
from typing import Protocol

from ratesvc.log import get_logger
from ratesvc.models import Quote

log = get_logger("pipeline")

IDLE_S = 0.5
"""No quote for this long: the sinks get an empty batch (the stream notices staleness within it)."""


class Sink(Protocol):
    """Something the drainer writes batches to (Redis for handlers, PostgreSQL for history)."""

    name: str

    async def write(self, batch: Sequence[Quote]) -> None:
        """Store a batch; an empty one means ``idle_s`` passed without a quote."""
        ...


class UpdateQueue:
    def __init__(self, maxsize: int) -> None:
        self._queue: asyncio.Queue[Quote] = asyncio.Queue(maxsize)
        self.dropped = 0
        self.offered = 0

    def offer(self, quote: Quote) -> bool:
        """Queue ``quote`` without waiting; False (and counted) when the queue is full."""
        try:
            self._queue.put_nowait(quote)
        except asyncio.QueueFull:
            self.dropped += 1
            if self.dropped % 1000 == 1:
                log.warning("queue_full_update_dropped", dropped_total=self.dropped)
            return False
        self.offered += 1
        return True

    @property
    def depth(self) -> int:
        return self._queue.qsize()

    async def next_batch(
        self, batch_max: int, flush_interval_s: float, idle_s: float | None = None
    ) -> list[Quote]:
        """Wait for one quote, then gather more until ``batch_max`` or the interval ends.

        With ``idle_s``, an empty batch when no quote came within that long.
        """
        try:
            async with asyncio.timeout(idle_s):
                batch = [await self._queue.get()]
        except TimeoutError:
            return []
        loop = asyncio.get_running_loop()
        deadline = loop.time() + flush_interval_s
        while len(batch) < batch_max:
            try:
                batch.append(self._queue.get_nowait())
                continue
            except asyncio.QueueEmpty:
                pass
            remaining = deadline - loop.time()
            if remaining <= 0:
                break
            try:
                async with asyncio.timeout(remaining):
                    batch.append(await self._queue.get())
            except TimeoutError:
                break
        return batch

    def done(self, count: int) -> None:
        for _ in range(count):
            self._queue.task_done()

    async def join(self, timeout_s: float) -> bool:
        """Wait until every queued update was written; False if that took too long."""
        try:
            async with asyncio.timeout(timeout_s):
                await self._queue.join()
        except TimeoutError:
            return False
        return True


@dataclass
class Drainer:
    """Takes batches off the queue and writes each to every sink, in order."""

    queue: UpdateQueue
    sinks: list[Sink]
    """Shared with ``Services.sinks``: the features add theirs after the drainer starts."""
    _: KW_ONLY
    batch_max: int = 500
    flush_interval_s: float = 0.02
    idle_s: float = IDLE_S
    batches: int = field(default=0, init=False)
    """Batches of quotes written (the empty batches of idle time not counted)."""
    sink_errors: dict[str, int] = field(default_factory=dict, init=False)

    async def run(self) -> None:
        while True:
            batch = await self.queue.next_batch(self.batch_max, self.flush_interval_s, self.idle_s)
            try:
                await self.write(batch)
            finally:
                self.queue.done(len(batch))

    async def write(self, batch: Sequence[Quote]) -> None:
        # Redis first: it is what handlers read, so it must not wait for history.
        for sink in self.sinks:
            try:
                await sink.write(batch)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - one store's trouble must not stop the other
                self.sink_errors[sink.name] = self.sink_errors.get(sink.name, 0) + 1
                log.warning("sink_write_failed", sink=sink.name, error=repr(exc), size=len(batch))
        if batch:
            self.batches += 1
