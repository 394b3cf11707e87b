"""Aggregates answers this process served lately, kept while Redis says they still hold.

A cache hit on a chart reads and splices every chunk of its range: a
ten-day minute chart is ten chunks, five years of day bars six, two months
of 5-minute bars sixty, each read, checked for freshness and cut to the
range, about a millisecond of CPU in all.  Asked again, the same answer
costs one small Redis read here instead.

Why a kept answer is never wrong, in any replica: it is kept with the
versions its chunks had when they were read (in the same HMGET, see
cache.py), and served only while (a) Redis still holds those versions and
(b) none of its chunks has passed its freshness.  Any write of one of its
chunks, by any replica or the refresher, gives that chunk a new version; a
purge or an eviction removes them; so (a) fails at once and the answer is
built again from Redis.  An answer with a stale chunk (served after an
upstream failure) or the chunk still open today is not kept; one made of
chunks just fetched is, since it is what the next read of them builds.  So
each kept answer is exactly what the slow path would build now.

Bounded by bytes (``RATESVC_STOCKS_KEPT_ANSWERS_MB``, 128 by default: twice
the 480 distinct charts of ``bench/stocks_workload.py``, about 65 MiB) and by
count, the least recently served going first.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterator
from dataclasses import dataclass

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric

from ratesvc.stocks.cache import BarStore
from ratesvc.stocks.models import SeriesKey
from ratesvc.stocks.service import now_ms

DEFAULT_MAX_PAGES = 4096


@dataclass(frozen=True, slots=True)
class HotPage:
    """An aggregates answer as rendered, less what differs per request (request id, base URL)."""

    series: SeriesKey
    fields: tuple[str, ...]
    """The version fields of the chunks it was built from (``cache.version_fields``)."""
    versions: tuple[bytes | None, ...]
    """Their versions then."""
    fresh_until_ms: int
    head: bytes
    """The body up to the request id (``routes.render_head``)."""
    count: int
    next_path: str | None
    """``next_url`` without this service's base URL, which depends on how it was reached."""


class HotPages:
    def __init__(
        self,
        store: BarStore,
        *,
        max_bytes: int,
        max_pages: int = DEFAULT_MAX_PAGES,
    ) -> None:
        self.store = store
        self.max_bytes = max_bytes
        self.max_pages = max_pages
        self._pages: dict[Hashable, HotPage] = {}
        self._bytes = 0

    @property
    def kept(self) -> int:
        return len(self._pages)

    @property
    def kept_bytes(self) -> int:
        return self._bytes

    async def get(self, key: Hashable) -> HotPage | None:
        """The page kept under ``key`` if it still holds; raises what Redis raises."""
        page = self._pages.get(key)
        if page is None:
            return None
        if (
            now_ms() >= page.fresh_until_ms
            or tuple(await self.store.versions(page.series, page.fields)) != page.versions
        ):
            self._drop(key, page)
            return None
        # Served last: the least recently served go first.
        if self._pages.pop(key, None) is page:
            self._pages[key] = page
        return page

    def keep(self, key: Hashable, page: HotPage) -> None:
        size = len(page.head)
        if size > self.max_bytes // 8:
            return  # a few huge answers would push out everything else
        old = self._pages.pop(key, None)
        if old is not None:
            self._bytes -= len(old.head)
        while self._pages and (
            self._bytes + size > self.max_bytes or len(self._pages) >= self.max_pages
        ):
            oldest = next(iter(self._pages))
            self._bytes -= len(self._pages.pop(oldest).head)
        self._pages[key] = page
        self._bytes += size

    def collect(self) -> Iterator[Metric]:
        yield GaugeMetricFamily(
            "ratesvc_stocks_kept_answers", "Aggregates answers kept by the process", value=self.kept
        )
        yield GaugeMetricFamily(
            "ratesvc_stocks_kept_answer_bytes",
            "Bytes of the aggregates answers kept by the process",
            value=self.kept_bytes,
        )

    def _drop(self, key: Hashable, page: HotPage) -> None:
        # Only this page: another request may have kept a newer one meanwhile.
        if self._pages.get(key) is page:
            del self._pages[key]
            self._bytes -= len(page.head)
