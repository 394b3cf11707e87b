"""Counters of the stocks feature, exposed on /metrics at scrape time."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field

from prometheus_client.core import CounterMetricFamily
from prometheus_client.metrics_core import Metric

from ratesvc.stocks.models import CacheStatus


@dataclass
class StocksStats:
    upstream_calls: Counter[str] = field(default_factory=Counter)
    """Calls made to Polygon, by outcome (``ok`` or a failure kind)."""
    answers: Counter[CacheStatus] = field(default_factory=Counter)
    """Answers served, by X-Cache status."""
    chunks: Counter[str] = field(default_factory=Counter)
    """Chunks an answer used, by where they came from (``cache``, ``upstream``, ``stale``)."""
    coalesced_waits: int = 0
    """Times a request waited for another request's upstream call instead of making one."""
    refreshes: int = 0
    """Open sessions refreshed in the background."""

    def collect(self) -> Iterator[Metric]:
        calls = CounterMetricFamily(
            "ratesvc_stocks_upstream_calls", "Calls made to Polygon", labels=["outcome"]
        )
        for outcome, count in sorted(self.upstream_calls.items()):
            calls.add_metric([outcome], count)
        yield calls
        answers = CounterMetricFamily(
            "ratesvc_stocks_answers", "Stock bar answers by X-Cache status", labels=["cache"]
        )
        for status, count in sorted(self.answers.items()):
            answers.add_metric([status], count)
        yield answers
        hits = CounterMetricFamily(
            "ratesvc_stocks_cache_hits", "Answers served from the cache alone (X-Cache HIT)"
        )
        hits.add_metric([], self.answers["HIT"])
        yield hits
        misses = CounterMetricFamily(
            "ratesvc_stocks_cache_misses",
            "Answers that needed an upstream call (X-Cache MISS or PARTIAL)",
        )
        misses.add_metric([], self.answers["MISS"] + self.answers["PARTIAL"])
        yield misses
        chunks = CounterMetricFamily(
            "ratesvc_stocks_chunks", "Cache chunks used by answers", labels=["source"]
        )
        for source, count in sorted(self.chunks.items()):
            chunks.add_metric([source], count)
        yield chunks
        waits = CounterMetricFamily(
            "ratesvc_stocks_coalesced_waits",
            "Requests that waited for a concurrent identical upstream call",
        )
        waits.add_metric([], self.coalesced_waits)
        yield waits
        refreshes = CounterMetricFamily(
            "ratesvc_stocks_background_refreshes", "Open sessions refreshed in the background"
        )
        refreshes.add_metric([], self.refreshes)
        yield refreshes
