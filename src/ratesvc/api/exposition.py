"""What ``/metrics`` answers: this process's metrics, or every worker's added up.

With ``RATESVC_WORKERS`` > 1 the kernel hands each scrape to any one of the
uvicorn workers, so ``/metrics`` from one worker alone would jump between
workers' numbers.  Each worker instead writes its whole exposition to
``<RATESVC_DATA_DIR>/metrics/<pid>.prom`` every ``EXPORT_INTERVAL_S`` (and
when it stops), and a scrape adds the files up, as prometheus_client's
multiprocess mode does: counters, histograms and summaries are summed over
workers, live or exited (so totals never go back), and each live worker's
gauges are shown with a ``worker`` label (its pid).  The answering worker
writes its own file first, so its numbers are current and the others' are at
most ``EXPORT_INTERVAL_S`` old.

The request path is untouched (request metrics stay plain in-process
numbers, see ``api/metrics.py``); the cost is one rendering per worker per
interval, and parsing the workers' files per scrape.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

from prometheus_client import generate_latest
from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import Collector, CollectorRegistry

from ratesvc.embedded import write_atomically
from ratesvc.log import get_logger

log = get_logger("metrics")

EXPORT_INTERVAL_S = 1.0
"""How old another worker's numbers in a scrape can be; well under a Prometheus scrape interval."""
SUMMED_TYPES = frozenset({"counter", "histogram", "summary", "gaugehistogram", "unknown"})
WORKER_LABEL = "worker"

Labels = tuple[tuple[str, str], ...]
Render = Callable[[], bytes]
"""This process's metrics in the Prometheus text format."""


def metrics_dir(data_path: Path) -> Path:
    """Where the workers of ``ratesvc serve`` under ``RATESVC_DATA_DIR`` write their metrics."""
    return data_path / "metrics"


def reset_metrics_dir(directory: Path) -> None:
    """Before the workers start: files of an earlier run would add to this run's counters."""
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True, exist_ok=True)


class WorkerMetrics:
    """One worker's share of ``/metrics`` when several workers serve one port."""

    def __init__(self, directory: Path, render: Render) -> None:
        self.directory = directory
        self.render = render
        self.path = directory / f"{os.getpid()}.prom"

    def write(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        write_atomically(self.path, self.render().decode())

    async def run(self) -> None:
        """Keep this worker's file current (a supervised task)."""
        while True:
            self.write()
            await asyncio.sleep(EXPORT_INTERVAL_S)

    def scrape(self) -> bytes:
        """Every worker's metrics added up."""
        self.write()
        expositions: list[tuple[int, str]] = []
        for path in sorted(self.directory.glob("*.prom")):
            with contextlib.suppress(FileNotFoundError, ValueError):
                expositions.append((int(path.stem), path.read_text()))
        registry = CollectorRegistry(auto_describe=False)
        registry.register(_Combined(expositions))
        return generate_latest(registry)


class _Combined(Collector):
    def __init__(self, expositions: list[tuple[int, str]]) -> None:
        self.expositions = expositions

    def collect(self) -> Iterator[Metric]:
        families: dict[str, Metric] = {}
        values: dict[str, dict[tuple[str, Labels], float]] = {}
        for pid, text in self.expositions:
            live = _alive(pid)
            try:
                parsed = list(text_string_to_metric_families(text))
            except ValueError as exc:  # a file is only ever replaced whole; be safe anyway
                log.warning("worker_metrics_unreadable", worker=pid, error=str(exc))
                continue
            for family in parsed:
                summed = family.type in SUMMED_TYPES
                if not summed and not live:
                    continue  # an exited worker's gauges describe nothing any more
                families.setdefault(
                    family.name, Metric(family.name, family.documentation, family.type)
                )
                series = values.setdefault(family.name, {})
                for sample in family.samples:
                    labels = sample.labels if summed else {**sample.labels, WORKER_LABEL: str(pid)}
                    key = (sample.name, tuple(sorted(labels.items())))
                    series[key] = series.get(key, 0.0) + sample.value
        for name, family in families.items():
            for (sample_name, label_pairs), value in values[name].items():
                family.add_sample(sample_name, dict(label_pairs), value)
            yield family


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def exposition_of(*registries: CollectorRegistry) -> Render:
    """The text of ``registries`` together, rendered when called."""

    def render() -> bytes:
        return b"".join(generate_latest(registry) for registry in registries)

    return render
