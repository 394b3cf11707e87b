"""This process's answers to ``/v1/courses`` queries, from quotes never older than 50 ms.

The quotes come from ``reader.py`` (this process's copy of the quotes hash,
read again at most every ``max_age_s``).  Every query shape is answered the
same way: its answer is rendered once from the copy, cached under the query's
normalised key, and served, with its ready-made headers, until the quotes
change or one of its rows turns stale (``valid_until``).  The cache is
bounded (``max_answers``, the least recently rendered shape goes first),
since a client can ask for many distinct shapes.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from redis.asyncio import Redis

from ratesvc.api.raw import JSON, NO_STORE, RETRY_AFTER_1, Reply
from ratesvc.courses.directions import Direction
from ratesvc.courses.query import CoursesQuery
from ratesvc.courses.rates import Pricing
from ratesvc.courses.reader import DEFAULT_MAX_AGE_S, QuoteCopy, QuoteReader
from ratesvc.courses.render import Course, etag_of, render

DEFAULT_MAX_ANSWERS = 1024
CACHE_CONTROL = b"public, max-age=1, must-revalidate"
"""Values change every second: caches may keep an answer one second, then revalidate (ETag)."""


@dataclass(frozen=True, slots=True)
class Answer:
    """One rendered answer with its replies, ready to send."""

    valid_until_ms: int
    status: int
    etag: bytes
    reply: Reply
    """The full answer (200 or 503)."""
    not_modified: Reply
    """A 304 to a matching ``If-None-Match``."""
    rows: tuple[Course, ...]

    @classmethod
    def of(
        cls, status: int, body: bytes, valid_until_ms: int, rows: tuple[Course, ...] = ()
    ) -> Answer:
        etag_bytes = etag_of(body).encode()
        length = (b"content-length", str(len(body)).encode())
        if status == 200:
            headers = [JSON, length, (b"etag", etag_bytes), (b"cache-control", CACHE_CONTROL)]
        else:
            headers = [JSON, length, RETRY_AFTER_1, NO_STORE]
        not_modified = Reply(304, [(b"etag", etag_bytes), (b"cache-control", CACHE_CONTROL)])
        return cls(
            valid_until_ms, status, etag_bytes, Reply(status, headers, body), not_modified, rows
        )

    def reply_to(self, if_none_match: bytes | None) -> Reply:
        """The full answer, or a 304 when ``If-None-Match`` names this one (or is ``*``)."""
        if (
            if_none_match is not None
            and self.status == 200
            and (self.etag in if_none_match or if_none_match.strip() == b"*")
        ):
            return self.not_modified
        return self.reply


class LocalAnswers:
    """Answers rendered from this process's copy of the quotes, read from Redis at most every ``max_age_s``."""

    def __init__(
        self,
        redis: Redis,
        directions: Mapping[str, Direction],
        pricing: Pricing,
        partial: str,
        *,
        max_age_s: float = DEFAULT_MAX_AGE_S,
        max_answers: int = DEFAULT_MAX_ANSWERS,
    ) -> None:
        self.reader = QuoteReader(redis, max_age_s)
        self.directions = directions
        self.pricing = pricing
        self.partial = partial
        self.max_answers = max_answers
        self._answers: dict[str, tuple[int, Answer]] = {}
        self.renders = 0
        """Answers rendered (for tests)."""

    @property
    def reads(self) -> int:
        """Redis reads made (for tests and metrics)."""
        return self.reader.reads

    @property
    def cached(self) -> int:
        return len(self._answers)

    async def answer(self, query: CoursesQuery) -> Answer:
        """The answer to ``query`` now: from the cache, or rendered from a copy at most ``max_age_s`` old.

        Raises what the Redis client raises when the copy is too old and Redis cannot be read.
        """
        copy = await self.reader.copy()
        cached = self._answers.get(query.key)
        if (
            cached is not None
            and cached[0] == copy.generation
            and time.time() * 1000 <= cached[1].valid_until_ms
        ):
            return cached[1]
        answer = self._render(query, copy)
        self._answers.pop(query.key, None)  # re-inserted last: the least recently rendered go first
        if len(self._answers) >= self.max_answers:
            del self._answers[next(iter(self._answers))]
        self._answers[query.key] = (copy.generation, answer)
        return answer

    def _render(self, query: CoursesQuery, copy: QuoteCopy) -> Answer:
        self.renders += 1
        rendered = render(
            self.pricing.rates(copy.quotes, (self.directions[d] for d in query.directions)),
            datetime.now(UTC),
            order=self.pricing.order,
            directions=query.directions,
            exchanger=query.exchanger,
            partial=self.partial,
        )
        valid_until_ms = int(rendered.valid_until.timestamp() * 1000)
        return Answer.of(rendered.status, rendered.body, valid_until_ms, rendered.rows)
