"""Watches the event backlog: stream length and the age of the oldest undrained event.

The samples feed ``/metrics``, the WARNING log while the drain lags (PostgreSQL
down or slow), and the appender's bound on the stream length.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError

from ratesvc.api.metrics import counter_families, gauge_families
from ratesvc.cancel import raise_if_cancelling
from ratesvc.events import keys
from ratesvc.events.appender import StreamAppender
from ratesvc.events.drainer import EventDrainer
from ratesvc.log import get_logger

log = get_logger("events.monitor")

_REPEAT_WARNING_S = 30.0


class BacklogMonitor:
    def __init__(
        self,
        redis: Redis,
        appender: StreamAppender,
        *,
        stream_max: int,
        lag_warn_s: float,
        interval_s: float = 0.5,
    ) -> None:
        self._redis = redis
        self._appender = appender
        self._stream_max = stream_max
        self._lag_warn_s = lag_warn_s
        self._interval_s = interval_s
        self.length = 0
        self.lag_s = 0.0
        self._lagging_since: float | None = None
        self._warned_at = 0.0
        self._was_full = False

    async def run(self) -> None:
        while True:
            raise_if_cancelling()
            try:
                await self.sample()
            except (RedisError, OSError) as exc:
                log.warning("events_backlog_sample_failed", error=repr(exc))
            await asyncio.sleep(self._interval_s)

    async def sample(self) -> None:
        pipe = self._redis.pipeline(transaction=False)
        pipe.xlen(keys.STREAM)
        pipe.xrange(keys.STREAM, count=1)
        length, oldest = await pipe.execute()
        now = time.time()
        self.length = int(length)
        self._appender.observe_length(self.length)
        if oldest:
            entry_ms = int(oldest[0][0].split(b"-")[0])
            self.lag_s = max(0.0, now - entry_ms / 1000)
        else:
            self.lag_s = 0.0
        self._report(now)

    @property
    def full(self) -> bool:
        """The stream holds ``events_stream_max`` events: posts are refused."""
        return self.length >= self._stream_max

    def healthy(self) -> bool:
        """The readiness check: False while new events are refused."""
        return not self.full

    def _report(self, now: float) -> None:
        if self.full != self._was_full:
            self._was_full = self.full
            if self.full:
                # New events are refused (503) until PostgreSQL catches up.
                log.error(
                    "events_backlog_full", stream_length=self.length, lag_s=round(self.lag_s, 1)
                )
            else:
                log.info("events_backlog_accepting_again", stream_length=self.length)
        lagging = self.lag_s > self._lag_warn_s or self.length >= 0.8 * self._stream_max
        if lagging:
            if self._lagging_since is None:
                self._lagging_since = now
            if now - self._warned_at >= _REPEAT_WARNING_S:
                self._warned_at = now
                log.warning(
                    "events_drain_lagging",
                    stream_length=self.length,
                    lag_s=round(self.lag_s, 1),
                    stream_max=self._stream_max,
                )
        elif self._lagging_since is not None:
            log.info("events_drain_caught_up", lagged_for_s=round(now - self._lagging_since, 1))
            self._lagging_since = None
            self._warned_at = 0.0


class EventsCollector:
    """Prometheus families of the events feature, read when /metrics is scraped."""

    def __init__(
        self, appender: StreamAppender, drainer: EventDrainer, monitor: BacklogMonitor
    ) -> None:
        self._appender = appender
        self._drainer = drainer
        self._monitor = monitor

    def __call__(self) -> Any:
        monitor, appender, stats = self._monitor, self._appender, self._drainer.stats
        gauges = [
            ("stream_length", "Events accepted, not yet in PostgreSQL", monitor.length),
            ("lag_seconds", "Age of the oldest event not yet in PostgreSQL", monitor.lag_s),
        ]
        counters = [
            ("accepted_requests", "Requests whose events entered the stream", appender.accepted_entries),
            ("append_failures", "Requests refused because Redis did not take them", appender.failed_entries),
            ("backlog_refusals", "Requests refused because the stream was full", appender.refused_backlog),
            ("rows_inserted", "Event rows this process wrote to PostgreSQL", stats.rows_inserted),
            ("rows_duplicate", "Redelivered or retried events already stored", stats.rows_duplicate),
            ("dead_lettered", "Events PostgreSQL refused, kept in the dead-letter stream", stats.dead_lettered),
            ("drain_retries", "Batch writes retried after a store error", stats.retries),
            ("claimed_entries", "Entries taken over from a drainer that stopped", stats.claimed_entries),
            ("consumers_removed", "Dead drainers removed from the consumer group", stats.consumers_removed),
        ]  # fmt: skip
        yield from gauge_families("ratesvc_events", gauges)
        yield from counter_families("ratesvc_events", counters)
