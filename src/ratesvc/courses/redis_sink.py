"""The drainer's Redis sink: the latest quotes for every process, and changes for the SSE stream."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime

import asyncpg
from redis.asyncio import Redis

from ratesvc.courses import keys
from ratesvc.courses.quotes_hash import encode_quotes, load_quotes, newer_than, newest_per_market
from ratesvc.courses.rates import Pricing
from ratesvc.courses.render import render
from ratesvc.courses.warm_start import latest_in_postgres
from ratesvc.log import get_logger
from ratesvc.models import Quote
from ratesvc.retry import STORE_ERRORS

log = get_logger("courses.redis_sink")

PRIME_TIMEOUT_S = 5.0
"""A hung PostgreSQL must not hold back the exchange connections of a new lease holder."""


class RedisCoursesSink:
    """Latest quotes, in one Redis round trip per batch, and changes for the SSE stream.

    Keeps the latest quotes in memory (primed from Redis when this replica takes
    the exchange lease) so rendering needs no read.  Publishes the default answer
    on ``keys.CHANGES`` whenever its bytes change, for the SSE stream.  Answers
    to requests are rendered by each process from the quotes (``local.py``).

    An empty batch means time passed without a quote (the drainer's idle
    timeout): the lease holder renders again so the stream notices a source
    turning stale.  A replica that does not hold the lease stays quiet, or it
    would publish its own outdated view next to the holder's.
    """

    name = "redis_courses"

    def __init__(self, redis: Redis, pricing: Pricing, partial: str) -> None:
        self.redis = redis
        self.pricing = pricing
        self.partial = partial
        self.quotes: dict[str, Quote] = {}
        self.holding = False
        """This replica holds the exchange lease (between ``prime`` and ``stand_down``)."""
        self._published: bytes | None = None
        self._resync = False
        """A write failed (Redis down or restarted empty): rewrite every quote."""

    async def prime(self, db: asyncpg.Pool) -> None:
        """Take over the shared view of the latest quotes (another replica may have written them).

        PostgreSQL's latest quotes count too: Redis may have lost its copy since
        this process started (the warm start at start-up only covered that moment).
        PostgreSQL being down costs only that part, never the lease holder's work.
        """
        stored = await load_quotes(self.redis)
        try:
            async with asyncio.timeout(PRIME_TIMEOUT_S):
                backed = await latest_in_postgres(db)
        except STORE_ERRORS as exc:
            log.warning("prime_without_postgres", error=repr(exc))
            backed = {}
        self.quotes.update(newer_than([*backed.values(), *stored.values()], self.quotes))
        self._published = None
        self._resync = True  # the first write puts every quote back where Redis lacks it
        self.holding = True

    def stand_down(self) -> None:
        """The lease is gone: another replica renders and publishes now."""
        self.holding = False

    async def write(self, batch: Sequence[Quote]) -> None:
        newest = newest_per_market(batch)
        if not newest and not self.holding and not self._resync:
            return
        self.quotes.update(newest)
        rates = self.pricing.rates(self.quotes)
        default = render(
            rates, datetime.now(UTC), order=self.pricing.order, partial=self.partial
        ).body
        pipe = self.redis.pipeline(transaction=False)
        # After a failed write Redis may hold none of our quotes (a restart without
        # persistence): write them all, not only this batch's, or a source that
        # quotes once a minute would be missing from Redis until its next poll.
        written = self.quotes if self._resync else newest
        if written:
            pipe.hset(keys.QUOTES, mapping=encode_quotes(written))
        # Fewer fields than this process holds means Redis lost the hash (restarted,
        # flushed, evicted) without a failed write showing it; nothing deletes fields.
        pipe.hlen(keys.QUOTES)
        if default != self._published:
            pipe.publish(keys.CHANGES, default)
        try:
            replies = await pipe.execute()
        except BaseException:
            self._resync = True
            self._published = None
            raise
        self._published = default
        stored_fields = replies[1 if written else 0]
        if stored_fields < len(self.quotes):
            log.warning("quotes_lost_in_redis_rewriting", fields=stored_fields)
            self._resync = True
            return
        self._resync = False
