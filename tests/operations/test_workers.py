"""`ratesvc serve --workers 2`: /metrics adds the workers up; /v1/ready names the lease holder."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from support.serve_process import RunningServe, serve_process

pytestmark = pytest.mark.slow

LEAST_REQUESTS = 100
MOST_REQUESTS = 2000
"""Bound on the requests sent until both workers have answered."""


@dataclass
class Answers:
    """What the test sent to /v1/ready and what came back."""

    sent: int = 0
    bodies: list[dict[str, Any]] = field(default_factory=list)

    @property
    def workers(self) -> set[str]:
        return {body["worker"] for body in self.bodies}


@pytest.fixture(scope="module")
def two_workers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RunningServe, Answers]]:
    tmp = tmp_path_factory.mktemp("workers")
    settings = {"RATESVC_DATA_DIR": str(tmp / "data"), "RATESVC_WORKERS": "2"}
    with serve_process(settings, tmp / "serve.log") as running:
        answers = Answers()
        # A new connection each time, so the kernel hands requests to either worker.
        while (
            len(answers.workers) < 2 or answers.bodies[-1]["leases"]["exchanges"]["holder"] is None
        ):
            assert answers.sent < MOST_REQUESTS, running.log()[-4000:]
            answers.sent += 1
            reply = httpx.get(running.base + "/v1/ready", timeout=10)
            assert reply.status_code == 200, reply.text
            answers.bodies.append(reply.json())
        yield running, answers


def _samples(text: str, name: str) -> list[tuple[dict[str, str], float]]:
    return [
        (sample.labels, sample.value)
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name
    ]


def _ready_requests(base: str) -> float:
    text = httpx.get(base + "/metrics", timeout=10).text
    samples = _samples(text, "ratesvc_requests_total")
    return sum(value for labels, value in samples if labels["path"] == "/v1/ready")


def test_metrics_count_the_requests_of_every_worker(
    two_workers: tuple[RunningServe, Answers],
) -> None:
    running, answers = two_workers
    assert len(answers.workers) == 2
    seen: list[float] = []
    deadline = time.monotonic() + 15
    # The answering worker's numbers are current, the other's at most a second old.
    while not seen or seen[-1] != answers.sent:
        assert time.monotonic() < deadline, f"sent {answers.sent}, /metrics said {seen[-5:]}"
        seen.append(_ready_requests(running.base))
        assert seen[-1] <= answers.sent
        time.sleep(0.1)
    assert seen == sorted(seen), "a counter went back"

    text = httpx.get(running.base + "/metrics", timeout=10).text
    held = _samples(text, "ratesvc_exchange_lease_held")
    assert {labels["worker"] for labels, _ in held} == {w.split(":")[1] for w in answers.workers}
    assert sum(value for _, value in held) == 1


def test_ready_names_the_worker_holding_the_exchange_lease(
    two_workers: tuple[RunningServe, Answers],
) -> None:
    _running, answers = two_workers
    last_by_worker = {body["worker"]: body for body in answers.bodies}
    holders = {body["leases"]["exchanges"]["holder"] for body in last_by_worker.values()}
    assert len(holders) == 1
    (holder,) = holders
    held_here = [
        w for w, body in last_by_worker.items() if body["leases"]["exchanges"]["held_here"]
    ]
    assert len(held_here) == 1
    assert holder.startswith(held_here[0] + ":")


def test_metrics_files_of_an_earlier_run_are_not_counted(
    tmp_path: Path, two_workers: tuple[RunningServe, Answers]
) -> None:
    _running, answers = two_workers
    data_dir = tmp_path / "data"
    stale = data_dir / "metrics" / "1.prom"
    stale.parent.mkdir(parents=True)
    stale.write_text('ratesvc_requests_total{method="GET",path="/v1/ready"} 1000.0\n')
    settings = {"RATESVC_DATA_DIR": str(data_dir), "RATESVC_WORKERS": "2"}
    with serve_process(settings, tmp_path / "serve.log") as running:
        httpx.get(running.base + "/v1/ready", timeout=10)
        assert _ready_requests(running.base) <= 1
    assert answers.sent >= 2
