"""Adding up the workers' metric files: counters summed, live workers' gauges labelled."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from ratesvc.api.exposition import WorkerMetrics


def _exposition(courses: int, fast: int, seconds: float, queue: int, health: int = 0) -> str:
    """One worker's file: request counts and latency of /v1/courses, queue depth."""
    lines = [
        "# HELP ratesvc_requests_total Total requests",
        "# TYPE ratesvc_requests_total counter",
        f'ratesvc_requests_total{{method="GET",path="/v1/courses"}} {courses}.0',
        *(
            [f'ratesvc_requests_total{{method="GET",path="/v1/health"}} {health}.0']
            if health
            else []
        ),
        "# HELP ratesvc_request_duration_seconds Request duration, in seconds",
        "# TYPE ratesvc_request_duration_seconds histogram",
        f'ratesvc_request_duration_seconds_bucket{{le="0.005",path="/v1/courses"}} {fast}.0',
        f'ratesvc_request_duration_seconds_bucket{{le="+Inf",path="/v1/courses"}} {courses}.0',
        f'ratesvc_request_duration_seconds_count{{path="/v1/courses"}} {courses}.0',
        f'ratesvc_request_duration_seconds_sum{{path="/v1/courses"}} {seconds}',
        "# HELP ratesvc_queue_depth Updates waiting for the drainer",
        "# TYPE ratesvc_queue_depth gauge",
        f"ratesvc_queue_depth {queue}.0",
    ]
    return "\n".join(lines) + "\n"


OTHER = _exposition(courses=5, fast=4, seconds=0.01, queue=7, health=2)
OWN = _exposition(courses=3, fast=1, seconds=0.02, queue=1)


def _exited_pid() -> int:
    child = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                           capture_output=True, text=True, check=True)  # fmt: skip
    return int(child.stdout)


def _values(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def _scrape(tmp_path: Path, other_pid: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    (tmp_path / f"{other_pid}.prom").write_text(OTHER)
    (tmp_path / "notes.txt").write_text("not a worker's file")
    return _values(WorkerMetrics(tmp_path, OWN.encode).scrape().decode())


def test_counters_and_histograms_are_summed_and_live_gauges_labelled(tmp_path: Path) -> None:
    other = os.getppid()  # alive for the whole test
    values = _scrape(tmp_path, other)
    courses = (("method", "GET"), ("path", "/v1/courses"))
    assert values["ratesvc_requests_total", courses] == 8
    assert values["ratesvc_requests_total", (("method", "GET"), ("path", "/v1/health"))] == 2
    inf = (("le", "+Inf"), ("path", "/v1/courses"))
    assert values["ratesvc_request_duration_seconds_bucket", inf] == 8
    low = (("le", "0.005"), ("path", "/v1/courses"))
    assert values["ratesvc_request_duration_seconds_bucket", low] == 5
    assert values[
        "ratesvc_request_duration_seconds_sum", (("path", "/v1/courses"),)
    ] == pytest.approx(0.03)
    assert values["ratesvc_queue_depth", (("worker", str(os.getpid())),)] == 1
    assert values["ratesvc_queue_depth", (("worker", str(other)),)] == 7


def test_an_exited_workers_counters_stay_and_its_gauges_go(tmp_path: Path) -> None:
    gone = _exited_pid()
    values = _scrape(tmp_path, gone)
    assert values["ratesvc_requests_total", (("method", "GET"), ("path", "/v1/courses"))] == 8
    gauges = [key for key in values if key[0] == "ratesvc_queue_depth"]
    assert gauges == [("ratesvc_queue_depth", (("worker", str(os.getpid())),))]
