"""The Polygon gateway: any declared endpoint answered from cache, coalesced, within budget.

One path for every endpoint (``endpoints.Endpoint``): a fresh cached document
is a HIT; else the endpoint's ``local`` answer, from what the cache already
holds, is tried; else one request (in any replica) takes the document's lock
and calls Polygon with a slot of the shared budget while the others wait for
it (COALESCED).  When Polygon fails, a cached document past its freshness is
served marked STALE; without one, the failure is answered.
"""

from __future__ import annotations

from dataclasses import dataclass

import msgspec
from redis.asyncio import Redis

from ratesvc.log import get_logger
from ratesvc.stocks.coalesce import NamedLocks
from ratesvc.stocks.docstore import DocStore, Document
from ratesvc.stocks.endpoints import DocRequest
from ratesvc.stocks.errors import UpstreamError, UpstreamFailure
from ratesvc.stocks.metrics import StocksStats
from ratesvc.stocks.models import CacheStatus
from ratesvc.stocks.service import StockBars, now_ms, pausing_on_429
from ratesvc.stocks.sessions import Sessions
from ratesvc.stocks.upstream import PolygonClient

log = get_logger("stocks.gateway")

MAX_LOCK_ROUNDS = 3
_NEXT_URL = b'"next_url":"/'


class _Paged(msgspec.Struct):
    next_url: str | None = None


_decode_object = msgspec.json.Decoder(dict[str, msgspec.Raw]).decode
_decode_paged = msgspec.json.Decoder(_Paged).decode
_encode = msgspec.json.Encoder().encode


@dataclass(frozen=True)
class Answer:
    status: int
    body: bytes
    cache: CacheStatus


def rebase_next_url(body: bytes, base_url: str) -> bytes:
    """Stored pages say ``"next_url":"/v3/..."``; the client gets this service's full URL."""
    return body.replace(_NEXT_URL, b'"next_url":"' + base_url.rstrip("/").encode() + b"/", 1)


class Gateway:
    def __init__(
        self,
        *,
        redis: Redis,
        docs: DocStore,
        locks: NamedLocks,
        client: PolygonClient,
        bars: StockBars,
        sessions: Sessions,
        stats: StocksStats,
    ) -> None:
        self.redis = redis
        self.docs = docs
        self.locks = locks
        self.client = client
        self.bars = bars
        self.sessions = sessions
        self.stats = stats

    def served(self, request: DocRequest, answer: Answer) -> Answer:
        self.stats.answers[(request.endpoint.name, answer.cache)] += 1
        return answer

    async def document(self, request: DocRequest) -> Answer:
        stored = await self.docs.load(request.name)
        if stored is not None and stored.is_fresh(now_ms()):
            return self.served(request, Answer(stored.status, stored.body, "HIT"))
        try:
            if request.endpoint.local is not None:
                local = await request.endpoint.local(self, request)
                if local is not None:
                    # Kept like a fetched answer, so the next ask is a single read.
                    await self._keep(request, local.status, local.body)
                    return self.served(request, local)
            document, cache = await self._coalesced(request)
        except UpstreamError as exc:
            if stored is None:
                raise
            # Stale beats an error: this answer was right when it was fetched.
            log.info("serving_stale", document=request.name, why=exc.failure.kind)
            return self.served(request, Answer(stored.status, stored.body, "STALE"))
        return self.served(request, Answer(document.status, document.body, cache))

    async def _coalesced(self, request: DocRequest) -> tuple[Document, CacheStatus]:
        names = [request.name]
        for _ in range(MAX_LOCK_ROUNDS):
            owned, token = await self.locks.try_lock(names)
            if owned:
                try:
                    document = await self._fetch(request)
                except UpstreamError as exc:
                    await self.locks.release(owned, token, exc.failure)
                    raise
                await self.locks.release(owned, token)
                return document, "MISS"
            self.stats.coalesced_waits += 1
            if not await self.locks.wait_unlocked(names):
                raise UpstreamError(
                    UpstreamFailure(kind="timeout", detail="timed out waiting for Polygon")
                )
            waited = await self.docs.load(request.name)
            if waited is not None and waited.is_fresh(now_ms()):
                return waited, "COALESCED"
            if failure := await self.locks.failure(names):
                raise UpstreamError(failure)
            # The call we waited for vanished (its lock expired): try to take it over.
        raise UpstreamError(UpstreamFailure(kind="unavailable", detail="Polygon's answer was lost"))

    async def _fetch(self, request: DocRequest) -> Document:
        endpoint = request.endpoint
        status, body = await pausing_on_429(
            self.bars.budget,
            self.client.fetch_document(
                endpoint.name, request.upstream_path, request.query, self.bars.user_slot
            ),
        )
        document = await self._keep(request, status, self._checked(request, body))
        if endpoint.after_fetch is not None:
            await endpoint.after_fetch(self, request, document)
        return document

    async def _keep(self, request: DocRequest, status: int, body: bytes) -> Document:
        now = now_ms()
        fresh_until = await request.endpoint.freshness.fresh_until(request, now, self.sessions)
        document = Document(now, fresh_until, status, body)
        await self.docs.save(request.name, document)
        return document

    def _checked(self, request: DocRequest, body: bytes) -> bytes:
        """Polygon's body if it is a JSON object; a paged one with ``next_url`` made ours."""
        try:
            fields = _decode_object(body)
            next_url = _decode_paged(body).next_url if request.endpoint.paged else None
        except msgspec.DecodeError:
            raise UpstreamError(
                UpstreamFailure(kind="unavailable", detail="Polygon sent an unreadable answer")
            ) from None
        if next_url is None:
            return body
        # Only the path and query matter (Polygon's clients do the same), minus any key;
        # the host is added when served, so the cached page works behind any name.
        local = self.client.local_next_url(next_url)
        fields["next_url"] = msgspec.Raw(_encode(local))
        return _encode(fields)
