"""Durable acceptance: put a request's events into the Redis stream before answering 202.

Requests that arrive while a write is in flight are appended together in the
next pipeline ("group commit"), so under load many requests share one Redis
round trip instead of paying one each; alone, a request waits for just its own.
Each request still gets its own stream entry, so its own server-assigned ids.
"""

from __future__ import annotations

import asyncio

from redis.asyncio import Redis
from redis.exceptions import RedisError

from ratesvc.events import keys
from ratesvc.log import get_logger

log = get_logger("events.appender")

_PIPELINE_MAX = 512
"""Entries per pipeline; larger bursts go out in consecutive pipelines."""


class EventStoreUnavailableError(Exception):
    """Redis did not take the events; nothing was accepted."""


class BacklogFullError(Exception):
    """The stream holds ``events_stream_max`` events already (PostgreSQL is behind or down)."""


class StreamAppender:
    def __init__(self, redis: Redis, stream_max: int) -> None:
        self._redis = redis
        self._stream_max = stream_max
        self._waiting: list[tuple[bytes, asyncio.Future[None]]] = []
        self._flusher: asyncio.Task[None] | None = None
        self.accepted_entries = 0
        self.failed_entries = 0
        self.refused_backlog = 0
        # Backlog bound: the monitor samples XLEN; entries added since then are counted here.
        # Replicas each add their own since the last sample, a small overshoot of the bound.
        self.sampled_length = 0
        self.appended_since_sample = 0

    def observe_length(self, length: int) -> None:
        """Record a fresh XLEN sample (called by the monitor)."""
        self.sampled_length = length
        self.appended_since_sample = 0

    async def append(self, entry: bytes) -> None:
        """Return once ``entry`` is in the stream; raise if it is not."""
        if self.sampled_length + self.appended_since_sample >= self._stream_max:
            self.refused_backlog += 1
            raise BacklogFullError
        self.appended_since_sample += 1
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.append((entry, future))
        if self._flusher is None:
            self._flusher = asyncio.create_task(self._flush(), name="events-append")
        await future

    async def _flush(self) -> None:
        try:
            while self._waiting:
                batch = self._waiting[:_PIPELINE_MAX]
                del self._waiting[:_PIPELINE_MAX]
                await self._write(batch)
        finally:
            self._flusher = None

    async def _write(self, batch: list[tuple[bytes, asyncio.Future[None]]]) -> None:
        pipe = self._redis.pipeline(transaction=False)
        for entry, _future in batch:
            pipe.xadd(keys.STREAM, {keys.ENTRY_FIELD: entry})
        try:
            results = await pipe.execute(raise_on_error=False)
        except (RedisError, OSError) as exc:
            results = [exc] * len(batch)
        first_error: BaseException | None = None
        for (_entry, future), result in zip(batch, results, strict=True):
            if isinstance(result, BaseException):
                self.failed_entries += 1
                first_error = first_error or result
                if not future.done():  # done: the client went away while we wrote
                    future.set_exception(EventStoreUnavailableError(str(result)))
            else:
                self.accepted_entries += 1
                if not future.done():
                    future.set_result(None)
        if first_error is not None:
            log.warning("events_append_failed", entries=len(batch), error=repr(first_error))
