"""Operational routes: liveness, readiness and Prometheus metrics (exempt from rate limits)."""

from __future__ import annotations

import asyncio
from typing import Any

import msgspec
from litestar import MediaType, Response, get
from litestar.datastructures import State
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector, CollectorRegistry

from ratesvc.lease import Lease, worker_id
from ratesvc.services import Services
from ratesvc.supervisor import TaskState

CHECK_TIMEOUT_S = 1.0
OPS_OPT = {"exempt_from_rate_limit": True}


class Health(msgspec.Struct):
    status: str


class LeaseHolder(msgspec.Struct):
    holder: str | None
    """``host:pid:token`` of the worker or replica holding it; null when free or unknown."""
    held_here: bool
    """True when the process that answered holds it."""


class Readiness(msgspec.Struct):
    status: str
    redis: str
    postgres: str
    tasks: dict[str, TaskState]
    checks: dict[str, bool]
    worker: str
    """``host:pid`` of the process that answered (one of several workers or replicas)."""
    leases: dict[str, LeaseHolder]


@get("/v1/health", tags=["ops"], opt=OPS_OPT, summary="Liveness: the process is up")
async def health() -> Health:
    return Health(status="ok")


async def _check(probe: Any) -> str:
    try:
        async with asyncio.timeout(CHECK_TIMEOUT_S):
            await probe
    except Exception as exc:  # noqa: BLE001 - any failure means "not ready"
        return f"error: {type(exc).__name__}"
    return "ok"


@get(
    "/v1/ready",
    tags=["ops"],
    opt=OPS_OPT,
    summary="Readiness: Redis and PostgreSQL reachable, background tasks' state",
    responses={},
)
async def ready(state: State) -> Response[Readiness]:
    services: Services = state.services
    names = list(services.leases)
    (redis_status, pg_status), holders = await asyncio.gather(
        asyncio.gather(_check(services.redis.ping()), _check(services.db.fetchval("SELECT 1"))),
        asyncio.gather(*(_lease_holder(services.leases[name]) for name in names)),
    )
    checks = {name: check() for name, check in services.readiness_checks.items()}
    leases = dict(zip(names, holders, strict=True))
    ok = redis_status == "ok" and pg_status == "ok" and all(checks.values())
    body = Readiness(
        status="ok" if ok else "unavailable",
        redis=redis_status,
        postgres=pg_status,
        tasks=dict(services.supervisor.states),
        checks=checks,
        worker=worker_id(),
        leases=leases,
    )
    return Response(body, status_code=200 if ok else 503)


async def _lease_holder(lease: Lease) -> LeaseHolder:
    try:
        async with asyncio.timeout(CHECK_TIMEOUT_S):
            holder = await lease.holder()
    except Exception:  # noqa: BLE001 - Redis trouble is already reported as "redis"
        holder = None
    return LeaseHolder(holder=holder, held_here=lease.held and holder == lease.owner)


class ServiceCollector(Collector):
    """Exposes the pipeline's and supervisor's state, read at scrape time."""

    def __init__(self, services: Services) -> None:
        self.services = services

    def collect(self) -> Any:
        services = self.services
        depth = GaugeMetricFamily("ratesvc_queue_depth", "Updates waiting for the drainer")
        depth.add_metric([], services.queue.depth)
        yield depth
        dropped = CounterMetricFamily(
            "ratesvc_queue_dropped", "Updates dropped because the queue was full"
        )
        dropped.add_metric([], services.queue.dropped)
        yield dropped
        restarts = CounterMetricFamily(
            "ratesvc_task_restarts", "Background task restarts", labels=["task"]
        )
        running = GaugeMetricFamily(
            "ratesvc_task_running", "1 when the background task is running", labels=["task"]
        )
        for name, task_state in services.supervisor.states.items():
            restarts.add_metric([name], task_state.restarts)
            running.add_metric([name], 1 if task_state.status == "running" else 0)
        yield restarts
        yield running
        if services.drainer is not None:
            errors = CounterMetricFamily(
                "ratesvc_sink_errors", "Failed batch writes per sink", labels=["sink"]
            )
            for sink, count in services.drainer.sink_errors.items():
                errors.add_metric([sink], count)
            yield errors
        for source in services.metric_sources:
            yield from source()


def service_registry(services: Services) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(ServiceCollector(services))
    return registry


@get("/metrics", tags=["ops"], opt=OPS_OPT, include_in_schema=False)
async def metrics(state: State) -> Response[bytes]:
    body: bytes = state.scrape_metrics()
    return Response(body, media_type=MediaType.TEXT + "; version=0.0.4")


OPS_ROUTES = [health, ready, metrics]
