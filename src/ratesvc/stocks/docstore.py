"""Whole Polygon answers ("documents") cached in Redis, freshness decided on read.

Stored form: ``[fetched_ms, fresh_until_ms, http_status]\\n<Polygon's JSON body>``.
As with bar chunks, a document past its freshness stays in Redis for a while
(``STALE_KEEP_MS``) because it is the best answer when Polygon fails (served
marked stale); a document that never changes (a closed day) has no expiry at
all and leaves only through ``ratesvc purge`` or Redis's eviction policy.
"""

from __future__ import annotations

from dataclasses import dataclass

import msgspec
from redis.asyncio import Redis

from ratesvc.log import get_logger
from ratesvc.pipelined import PipelinedRedis
from ratesvc.stocks import keys

log = get_logger("stocks.docstore")

FOREVER = 2**62
"""``fresh_until_ms`` of a document that never changes."""
STALE_KEEP_MS = 7 * 86_400_000
"""How long an expired document is kept as a stale answer for upstream outages."""

_encode = msgspec.json.Encoder().encode
_decode_header = msgspec.json.Decoder(tuple[int, int, int]).decode


@dataclass(frozen=True)
class Document:
    fetched_ms: int
    fresh_until_ms: int
    status: int
    """Polygon's HTTP status: 200, or 404 for a day or ticker it has nothing on."""
    body: bytes

    def is_fresh(self, now_ms: int) -> bool:
        return now_ms < self.fresh_until_ms

    def encode(self) -> bytes:
        return _encode((self.fetched_ms, self.fresh_until_ms, self.status)) + b"\n" + self.body

    @classmethod
    def decode(cls, value: bytes) -> Document:
        header, newline, body = value.partition(b"\n")
        if not newline:
            raise msgspec.DecodeError("not a cached document")
        fetched_ms, fresh_until_ms, status = _decode_header(header)
        return cls(fetched_ms, fresh_until_ms, status, body)


class DocStore:
    def __init__(self, redis: Redis, *, reader: PipelinedRedis | None = None) -> None:
        self.redis = redis
        self.reader = reader
        """Cache hits are read through this pipelined client when given (see pipelined.py)."""

    async def load(self, name: str) -> Document | None:
        key = keys.doc_key(name)
        if self.reader is not None:
            value = await self.reader.execute("GET", key)
        else:
            value = await self.redis.get(key)
        if value is None:
            return None
        try:
            return Document.decode(value.encode() if isinstance(value, str) else value)
        except (msgspec.DecodeError, ValueError):
            log.warning("bad_document_in_redis", name=name)
            return None

    async def save(self, name: str, document: Document) -> None:
        expire_ms = None
        if document.fresh_until_ms < FOREVER:
            expire_ms = max(1, document.fresh_until_ms - document.fetched_ms) + STALE_KEEP_MS
        await self.redis.set(keys.doc_key(name), document.encode(), px=expire_ms)
