"""The Litestar application: ``create_app(settings)`` and its lifespan.

Start-up order (shutdown is the reverse): connect Redis, PostgreSQL and the
HTTP client; apply migrations; let each feature add its sinks and start its
sources; start the drainer.  At shutdown the sources stop first, the queue is
drained into the stores, and only then are the connections closed.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

import asyncpg
import httpx
from litestar import Litestar
from litestar.config.cors import CORSConfig
from litestar.datastructures import State
from litestar.exceptions import HTTPException
from litestar.middleware import DefineMiddleware
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import SwaggerRenderPlugin
from prometheus_client import REGISTRY
from redis.asyncio import Redis
from redis.exceptions import RedisError

from ratesvc import __version__
from ratesvc.api.errors import (
    http_exception_handler,
    internal_error_handler,
    store_unavailable_handler,
)
from ratesvc.api.exposition import WorkerMetrics, exposition_of, metrics_dir
from ratesvc.api.limits import RequestLimitsMiddleware
from ratesvc.api.metrics import RequestMetrics, RequestMetricsMiddleware
from ratesvc.api.ops import OPS_ROUTES, service_registry
from ratesvc.config import Settings, SettingsError, load_settings
from ratesvc.features import Feature
from ratesvc.header_timeout import HEADER_TIMEOUTS
from ratesvc.log import configure_logging, get_logger
from ratesvc.migrate import apply_migrations
from ratesvc.pipeline import Drainer, UpdateQueue
from ratesvc.ratelimit import ExceptionHandler, rate_limiting
from ratesvc.redact import redact_url
from ratesvc.services import Services
from ratesvc.supervisor import Supervisor

log = get_logger("app")

DRAINER_TASK = "drainer"
METRICS_TASK = "metrics_export"
MAX_BODY_BYTES = 1024 * 1024
REDIS_CONNECT_TIMEOUT_S = 1.0
REDIS_SOCKET_TIMEOUT_S = 2.0
"""A hung Redis answers requests with 503 after this, not redis-py's 5 s (longest block: 1 s)."""


def default_features() -> list[Feature]:
    from ratesvc.courses.feature import FEATURE as COURSES  # noqa: PLC0415
    from ratesvc.events.feature import FEATURE as EVENTS  # noqa: PLC0415
    from ratesvc.stocks.feature import FEATURE as STOCKS  # noqa: PLC0415

    return [COURSES, STOCKS, EVENTS]


async def _connect_postgres(url: str, attempts: int = 20) -> asyncpg.Pool:
    """Replicas may start before the database accepts connections; wait a little."""
    for attempt in range(1, attempts + 1):
        try:
            pool: asyncpg.Pool = await asyncpg.create_pool(
                url, min_size=1, max_size=10, command_timeout=30
            )
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            if attempt == attempts:
                raise
            log.warning("postgres_connect_retry", attempt=attempt, error=repr(exc))
            await asyncio.sleep(min(0.1 * 2**attempt, 2.0))
        else:
            return pool
    raise AssertionError("unreachable")


@asynccontextmanager
async def _lifespan(app: Litestar) -> AsyncIterator[None]:
    settings: Settings = app.state.settings
    features: list[Feature] = app.state.features
    assert settings.redis_url is not None
    assert settings.database_url is not None
    async with AsyncExitStack() as stack:
        redis = Redis.from_url(
            settings.redis_url,
            health_check_interval=10,
            socket_connect_timeout=REDIS_CONNECT_TIMEOUT_S,
            socket_timeout=REDIS_SOCKET_TIMEOUT_S,
        )
        stack.push_async_callback(redis.aclose)
        db = await _connect_postgres(settings.database_url)
        stack.push_async_callback(db.close)
        async with db.acquire() as conn:
            await apply_migrations(conn)
        http = httpx.AsyncClient(
            timeout=httpx.Timeout(10.0, connect=5.0),
            limits=httpx.Limits(max_connections=50, max_keepalive_connections=20),
            headers={"User-Agent": f"ratesvc/{__version__}"},
        )
        stack.push_async_callback(http.aclose)
        supervisor = Supervisor()
        services = Services(
            settings=settings,
            redis=redis,
            db=db,
            http=http,
            queue=UpdateQueue(settings.queue_max),
            supervisor=supervisor,
        )
        app.state.services = services
        services.metric_sources.append(app.state.request_metrics.collect)
        services.metric_sources.append(HEADER_TIMEOUTS.collect)
        render = exposition_of(REGISTRY, service_registry(services))
        worker_metrics: WorkerMetrics | None = None
        if settings.workers > 1:
            worker_metrics = WorkerMetrics(metrics_dir(settings.data_path), render)
            app.state.scrape_metrics = worker_metrics.scrape
        else:
            app.state.scrape_metrics = render
        log.info(
            "stores_connected",
            redis=redact_url(settings.redis_url),
            postgres=redact_url(settings.database_url),
        )

        for feature in features:
            if feature.start is not None:
                await feature.start(services)
        services.drainer = Drainer(
            services.queue,
            services.sinks,
            batch_max=settings.drain_batch_max,
            flush_interval_s=settings.drain_flush_interval_s,
        )
        supervisor.start(DRAINER_TASK, services.drainer.run)
        if worker_metrics is not None:
            supervisor.start(METRICS_TASK, worker_metrics.run)
        log.info("app_started", features=[f.name for f in features])
        try:
            yield
        finally:
            grace = settings.shutdown_grace_s
            sources = [name for name in supervisor.states if name != DRAINER_TASK]
            await supervisor.stop(sources, grace_s=grace)
            for feature in reversed(features):
                if feature.stop is not None:
                    await feature.stop(services)
            if not await services.queue.join(grace):
                log.warning("queue_not_drained_at_shutdown", depth=services.queue.depth)
            await supervisor.stop([DRAINER_TASK], grace_s=grace)
            if worker_metrics is not None:
                worker_metrics.write()  # this worker's final counts stay in the totals
            log.info("app_stopped")


def create_app(settings: Settings, features: list[Feature] | None = None) -> Litestar:
    if settings.redis_url is None or settings.database_url is None:
        raise SettingsError(
            "RATESVC_REDIS_URL and RATESVC_DATABASE_URL must be set "
            "(`ratesvc serve` starts embedded servers when they are not)"
        )
    chosen = default_features() if features is None else features
    routes: list[Any] = [*OPS_ROUTES]
    for feature in chosen:
        routes.extend(feature.routes)
    request_metrics = RequestMetrics(app_name="ratesvc", prefix="ratesvc")
    cors = CORSConfig(allow_origins=list(settings.cors_origins)) if settings.cors_origins else None
    middleware: list[Any] = [
        DefineMiddleware(RequestMetricsMiddleware, metrics=request_metrics),
        DefineMiddleware(RequestLimitsMiddleware, max_body_bytes=MAX_BODY_BYTES),
    ]
    http_errors: ExceptionHandler = http_exception_handler
    if (limiting := rate_limiting(settings)) is not None:
        middleware.append(limiting.middleware)
        http_errors = limiting.around(http_exception_handler)
    return Litestar(
        route_handlers=routes,
        lifespan=[_lifespan],
        middleware=middleware,
        cors_config=cors,
        exception_handlers={
            HTTPException: http_errors,
            RedisError: store_unavailable_handler,
            Exception: internal_error_handler,
        },
        openapi_config=OpenAPIConfig(
            title="ratesvc",
            version=__version__,
            description="Crypto rates, cached stock bars and event counts.",
            path="/docs",
            render_plugins=[SwaggerRenderPlugin(path="/")],
        ),
        request_max_body_size=MAX_BODY_BYTES,
        state=_initial_state(settings, chosen, request_metrics),
        debug=False,
        logging_config=None,
    )


def _initial_state(
    settings: Settings, features: list[Feature], request_metrics: RequestMetrics
) -> State:
    return State({"settings": settings, "features": features, "request_metrics": request_metrics})


def create_app_from_env() -> Litestar:
    """Entry point for uvicorn worker processes (``factory=True``)."""
    settings = load_settings()
    configure_logging(settings.log_level, settings.secrets)
    return create_app(settings)
