"""The shared resources of one running app, created and closed by the lifespan."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import httpx
from redis.asyncio import Redis

from ratesvc.config import Settings
from ratesvc.lease import Lease
from ratesvc.pipeline import Drainer, Sink, UpdateQueue
from ratesvc.supervisor import Supervisor

MetricSource = Callable[[], Iterable[Any]]
"""Yields prometheus_client metric families when /metrics is scraped."""


@dataclass
class Services:
    settings: Settings
    redis: Redis
    db: asyncpg.Pool
    http: httpx.AsyncClient
    queue: UpdateQueue
    supervisor: Supervisor
    sinks: list[Sink] = field(default_factory=list)
    metric_sources: list[MetricSource] = field(default_factory=list)
    """Features append collectors here; /metrics renders them with the request metrics."""
    readiness_checks: dict[str, Callable[[], bool]] = field(default_factory=dict)
    leases: dict[str, Lease] = field(default_factory=dict)
    """Leases this process competes for; /v1/ready names each one's holder."""
    drainer: Drainer | None = None
