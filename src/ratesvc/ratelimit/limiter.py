"""Per-client fixed-window counting: decided in process, merged into Redis in batches.

Why not Litestar's ``RateLimitMiddleware``: its store is read and written on
every request, a Redis round trip each that would halve the throughput of the
hot read routes.  Here a request costs a dict lookup and two additions.

Algorithm.  Time is cut into fixed windows of the limit's period (a minute for
``1500/minute``); Redis holds one counter per client and window,
``ratesvc:rl:<window>:<client>``, expiring after two periods.  Each replica keeps,
per client in the current window:

* ``synced``   - the global count Redis returned at the last merge,
* ``inflight`` - requests admitted here whose merge is on the wire,
* ``pending``  - requests admitted here since.

A request is admitted while ``synced + inflight + pending < limit``.  Every
``rate_limit_sync_interval_s`` (and sooner for a client whose pending count
reaches 1/16 of the headroom it has left) one pipeline INCRBYs every pending
count into Redis and reads the new global totals back.  Refused requests are
not counted, so a client that stops hammering gets its next window in full.

Overshoot.  A replica sees everything it admitted itself, and other replicas'
admissions up to their last merge; a replica merges at the latest when it has
admitted 1/16 of the headroom it saw, or one interval's worth of a client's
traffic.  So across N replicas a client gets at most ``limit`` plus, for each
other replica, what that replica admitted since its last merge - near the
limit, about one sync round trip of its traffic.  Like every fixed window, a
client may also spend two windows' worth within a short span around a window
boundary.  One replica alone never overshoots.

Bounded table.  At most ``max_clients`` clients are counted apart per window
(and so at most that many Redis keys per replica and window).  A client first
seen once the table is full counts against one shared bucket,
``OVERFLOW_KEY``, with one client's limit, until the window ends.  Nobody is
evicted: evicting would let a flood of fresh addresses wipe the counts of the
clients already counted and start them over, and would move the growth into
Redis.  The cost of the choice falls on newcomers during such a flood, for
the rest of one window; the clients already counted keep their own limits.

Failing open.  When Redis cannot be reached the pending counts are kept and
retried; each replica goes on enforcing the limit on what it sees itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

from prometheus_client.core import GaugeMetricFamily
from redis.asyncio import Redis
from redis.exceptions import RedisError

from ratesvc.api.metrics import counter_families
from ratesvc.cancel import raise_if_cancelling
from ratesvc.log import get_logger

log = get_logger("ratelimit")

KEY_PREFIX = "ratesvc:rl:"
OVERFLOW_KEY = "overflow"
"""The bucket shared by clients past the cap; never a client key (see ``client.py``)."""
_EARLY_MERGE_FRACTION = 16
_MIN_GAP_S = 0.005
"""Least time between two merges, so a burst of early wake-ups cannot spin the loop."""
_WARN_EVERY_S = 30.0


class _Client:
    __slots__ = ("inflight", "merge_at", "pending", "synced")

    def __init__(self, limit: int) -> None:
        self.synced = 0
        self.inflight = 0
        self.pending = 0
        self.merge_at = max(1, limit // _EARLY_MERGE_FRACTION)


class RateLimiter:
    def __init__(
        self, limit: int, period_s: int, sync_interval_s: float, max_clients: int = 100_000
    ) -> None:
        self.limit = limit
        self.max_clients = max_clients
        self.period_s = period_s
        self.sync_interval_s = sync_interval_s
        self.window = int(time.time() // period_s)
        self._clients: dict[str, _Client] = {}
        self._dirty: set[str] = set()
        self._wake: asyncio.Event | None = None
        self.admitted = 0
        self.refused = 0
        self.overflowed = 0
        """Requests of clients past the cap, counted in the shared overflow bucket."""
        self.merges = 0
        self.merge_failures = 0
        self._warned_at = 0.0

    def hit(self, key: str, now: float) -> int:
        """Count one request of client ``key``; its remaining allowance, or -1 if refused."""
        window = int(now // self.period_s)
        if window != self.window:
            self._roll(window)
        client = self._clients.get(key)
        if client is None:
            if len(self._clients) >= self.max_clients:
                client, key = self._overflow(), OVERFLOW_KEY
            else:
                client = self._clients[key] = _Client(self.limit)
        used = client.synced + client.inflight + client.pending
        if used >= self.limit:
            self.refused += 1
            return -1
        client.pending += 1
        self.admitted += 1
        if client.pending == 1:
            self._dirty.add(key)
        if client.pending >= client.merge_at and self._wake is not None:
            self._wake.set()
        return self.limit - used - 1

    def _overflow(self) -> _Client:
        self.overflowed += 1
        client = self._clients.get(OVERFLOW_KEY)
        if client is None:
            # Over the cap by this one bucket, the one a full table must still hold.
            client = self._clients[OVERFLOW_KEY] = _Client(self.limit)
            log.warning(
                "rate_limit_clients_over_cap_sharing_one_bucket",
                max_clients=self.max_clients,
                window_s=self.period_s,
            )
        return client

    def reset_in(self, now: float) -> int:
        """Whole seconds until the current window ends (at least 1)."""
        return max(1, int((self.window + 1) * self.period_s - now + 0.999))

    def _roll(self, window: int) -> None:
        # Counts of a finished window no longer matter; unmerged ones are dropped with it.
        self.window = window
        self._clients = {}
        self._dirty = set()

    async def run(self, redis: Redis) -> None:
        """Merge local counts into Redis forever (supervised; ``RateLimitPlugin`` starts it)."""
        self._wake = wake = asyncio.Event()
        while True:
            raise_if_cancelling()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.sync_interval_s):
                    await wake.wait()
            wake.clear()
            await self.merge(redis)
            await asyncio.sleep(_MIN_GAP_S)

    async def merge(self, redis: Redis) -> None:
        """One pipeline: INCRBY each pending count, learn the global totals back."""
        if not self._dirty:
            return
        window, clients = self.window, self._clients
        batch: list[tuple[str, _Client, int]] = []
        for key in self._dirty:
            client = clients[key]
            delta, client.pending = client.pending, 0
            client.inflight += delta
            batch.append((key, client, delta))
        self._dirty = set()
        pipe = redis.pipeline(transaction=False)
        ttl_s = 2 * self.period_s
        for key, _client, delta in batch:
            redis_key = f"{KEY_PREFIX}{window}:{key}"
            pipe.incrby(redis_key, delta)
            pipe.expire(redis_key, ttl_s)
        try:
            results = await pipe.execute()
        except (RedisError, OSError) as exc:
            self._merge_failed(window, batch, exc)
            return
        self.merges += 1
        if window != self.window:
            return  # the window rolled while the merge was on the wire
        for index, (_key, client, delta) in enumerate(batch):
            client.inflight -= delta
            client.synced = max(client.synced, int(results[2 * index]))
            headroom = self.limit - client.synced - client.inflight - client.pending
            client.merge_at = max(1, headroom // _EARLY_MERGE_FRACTION)

    def _merge_failed(
        self, window: int, batch: list[tuple[str, _Client, int]], exc: BaseException
    ) -> None:
        self.merge_failures += 1
        if window == self.window:
            for key, client, delta in batch:  # keep them for the next merge
                client.inflight -= delta
                client.pending += delta
                self._dirty.add(key)
        now = time.monotonic()
        if now - self._warned_at >= _WARN_EVERY_S:
            self._warned_at = now
            log.warning("rate_limit_merge_failed_counting_locally", error=repr(exc))

    def collect(self) -> Any:
        """Prometheus families (a ``metric_sources`` entry)."""
        yield from counter_families(
            "ratesvc_ratelimit",
            [
                ("admitted", "Requests the rate limiter let through", self.admitted),
                ("refused", "Requests answered 429", self.refused),
                ("overflowed", "Requests of clients past the cap, sharing one bucket", self.overflowed),
                ("merge_failures", "Merges into Redis that failed (counting locally)", self.merge_failures),
            ],
        )  # fmt: skip
        clients = GaugeMetricFamily("ratesvc_ratelimit_clients", "Clients seen this window")
        clients.add_metric([], len(self._clients))
        yield clients
