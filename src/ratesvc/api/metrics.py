"""Request counts and latency per route, as Prometheus metrics, for a few µs a request.

Same names and labels as Litestar's ``PrometheusMiddleware`` with
``prefix="ratesvc"`` and ``group_path=True`` (which ratesvc used before, and
which the dashboard reads): ``ratesvc_requests_total``,
``ratesvc_request_duration_seconds`` (a histogram with prometheus_client's
default buckets), ``ratesvc_requests_in_progress`` and
``ratesvc_requests_error_total`` (5xx), labelled ``method``, ``path`` (the
route template), ``status_code`` and ``app_name``.

Why not Litestar's: it builds a ``Request``, a label dict and five
``.labels()`` lookups per request, about a fifth of the CPU of a
``/v1/courses`` answer.  Here a request costs a dict lookup, a ``bisect`` and
a few additions; the series are plain numbers turned into metric families
when ``/metrics`` is scraped.
"""

from __future__ import annotations

import time
from bisect import bisect_left
from collections.abc import Iterable, Iterator
from typing import Any, TypeVar

from litestar.enums import ScopeType
from litestar.types import ASGIApp, Message, Receive, Scope, Send
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
)

BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0)
"""prometheus_client's default histogram buckets (seconds); +Inf is implied."""
EXCLUDED_PREFIXES = ("/metrics", "/docs")
LABELS = ["method", "path", "status_code", "app_name"]


class _Series:
    __slots__ = ("buckets", "count", "total_s")

    def __init__(self) -> None:
        self.count = 0
        self.total_s = 0.0
        self.buckets = [0] * (len(BUCKETS) + 1)


class RequestMetrics:
    """The numbers behind the request metrics of one app."""

    def __init__(self, app_name: str = "ratesvc", prefix: str = "ratesvc") -> None:
        self.app_name = app_name
        self.prefix = prefix
        self._series: dict[tuple[str, str, int], _Series] = {}
        self._in_progress: dict[tuple[str, str], int] = {}

    def started(self, method: str, path: str) -> None:
        key = (method, path)
        self._in_progress[key] = self._in_progress.get(key, 0) + 1

    def finished(self, method: str, path: str, status: int, duration_s: float) -> None:
        self._in_progress[method, path] -= 1
        series = self._series.get((method, path, status))
        if series is None:
            series = self._series[method, path, status] = _Series()
        series.count += 1
        series.total_s += duration_s
        series.buckets[bisect_left(BUCKETS, duration_s)] += 1

    def collect(self) -> Iterator[Any]:
        """Metric families for ``/metrics`` (a ``Services.metric_sources`` entry)."""
        prefix, app = self.prefix, self.app_name
        total = CounterMetricFamily(f"{prefix}_requests", "Total requests", labels=LABELS)
        errors = CounterMetricFamily(
            f"{prefix}_requests_error", "Total errors in requests", labels=LABELS
        )
        duration = HistogramMetricFamily(
            f"{prefix}_request_duration_seconds", "Request duration, in seconds", labels=LABELS
        )
        bounds = [*(repr(b) for b in BUCKETS), "+Inf"]
        for (method, path, status), series in list(self._series.items()):
            labels = [method, path, str(status), app]
            total.add_metric(labels, series.count)
            if status >= 500:
                errors.add_metric(labels, series.count)
            cumulative, running = [], 0
            for bound, count in zip(bounds, series.buckets, strict=True):
                running += count
                cumulative.append((bound, float(running)))
            duration.add_metric(labels, cumulative, series.total_s)
        in_progress = GaugeMetricFamily(
            f"{prefix}_requests_in_progress",
            "Total requests currently in progress",
            labels=["method", "path", "app_name"],
        )
        for (method, path), count in list(self._in_progress.items()):
            in_progress.add_metric([method, path, app], count)
        yield from (total, errors, duration, in_progress)


class RequestMetricsMiddleware:
    """Raw ASGI middleware feeding a ``RequestMetrics`` (outermost of the app's middleware)."""

    def __init__(self, app: ASGIApp, metrics: RequestMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await self.app(scope, receive, send)
            return
        path: str = scope.get("path_template", "")
        if path.startswith(EXCLUDED_PREFIXES):
            await self.app(scope, receive, send)
            return
        method = scope["method"]
        metrics = self.metrics
        status = 500  # unless the app answers: an exception escaped it

        async def send_and_note_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        started = time.perf_counter()
        metrics.started(method, path)
        try:
            await self.app(scope, receive, send_and_note_status)
        finally:
            metrics.finished(method, path, status, time.perf_counter() - started)


def counter_families(
    prefix: str, rows: Iterable[tuple[str, str, float]]
) -> Iterator[CounterMetricFamily]:
    """One unlabelled counter per ``(name, doc, value)`` row, named ``<prefix>_<name>``."""
    return _unlabelled(CounterMetricFamily, prefix, rows)


def gauge_families(
    prefix: str, rows: Iterable[tuple[str, str, float]]
) -> Iterator[GaugeMetricFamily]:
    """One unlabelled gauge per ``(name, doc, value)`` row, named ``<prefix>_<name>``."""
    return _unlabelled(GaugeMetricFamily, prefix, rows)


FamilyT = TypeVar("FamilyT", CounterMetricFamily, GaugeMetricFamily)


def _unlabelled(
    family: type[FamilyT], prefix: str, rows: Iterable[tuple[str, str, float]]
) -> Iterator[FamilyT]:
    for name, doc, value in rows:
        metric = family(f"{prefix}_{name}", doc)
        metric.add_metric([], value)
        yield metric
