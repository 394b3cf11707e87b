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
    upstream_calls: Counter[tuple[str, str]] = field(default_factory=Counter)
    """Calls made to Polygon, by endpoint and outcome (``ok`` or a failure kind)."""
    answers: Counter[tuple[str, CacheStatus]] = field(default_factory=Counter)
    """Answers served, by endpoint and X-Cache status."""
    chunks: Counter[str] = field(default_factory=Counter)
    """Chunks an answer used, by where they came from (``cache``, ``upstream``, ``stale``)."""
    coalesced_waits: int = 0
    """Times a request waited for another request's upstream call instead of making one."""
    refreshes: int = 0
    """Open sessions refreshed in the background."""

    def collect(self) -> Iterator[Metric]:
        calls = CounterMetricFamily(
            "ratesvc_stocks_upstream_calls",
            "Calls made to Polygon",
            labels=["endpoint", "outcome"],
        )
        for (endpoint, outcome), count in sorted(self.upstream_calls.items()):
            calls.add_metric([endpoint, outcome], count)
        yield calls
        answers = CounterMetricFamily(
            "ratesvc_stocks_answers",
            "Polygon gateway answers by endpoint and X-Cache status",
            labels=["endpoint", "cache"],
        )
        for (endpoint, status), count in sorted(self.answers.items()):
            answers.add_metric([endpoint, status], count)
        yield answers
        by_status: Counter[CacheStatus] = Counter()
        for (_, status), count in self.answers.items():
            by_status[status] += count
        hits = CounterMetricFamily(
            "ratesvc_stocks_cache_hits", "Answers served from the cache alone (X-Cache HIT)"
        )
        hits.add_metric([], by_status["HIT"])
        yield hits
        misses = CounterMetricFamily(
            "ratesvc_stocks_cache_misses",
            "Answers that needed an upstream call (X-Cache MISS or PARTIAL)",
        )
        misses.add_metric([], by_status["MISS"] + by_status["PARTIAL"])
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
