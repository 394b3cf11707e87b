"""Fault-injection helpers: the courses simulators, captured log lines, metric reading."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from courses.conftest import Simulated, courses_settings, point_at, simulated
from ratesvc.log import configure_logging

__all__ = [
    "Simulated",
    "captured_logs",
    "courses_settings",
    "log_events",
    "metric",
    "point_at",
    "simulated",
]


@pytest.fixture
def captured_logs() -> Iterator[io.StringIO]:
    """Every JSON log line of the test (written without the scrubber's help: no secrets given)."""
    stream = io.StringIO()
    configure_logging("DEBUG", stream=stream, json=True)
    yield stream
    configure_logging("DEBUG", json=True)


def log_events(stream: io.StringIO) -> list[dict[str, Any]]:
    events = []
    for line in stream.getvalue().splitlines():
        if line.startswith("{"):
            events.append(json.loads(line))
    return events


async def metric(client: httpx.AsyncClient, name: str, labels: str = "") -> float | None:
    """A sample of ``/metrics`` by name (and exact label text), None when not exposed."""
    wanted = f"{name}{{{labels}}}" if labels else name
    for line in (await client.get("/metrics")).text.splitlines():
        if line.startswith(wanted + " "):
            return float(line.split()[1])
    return None
