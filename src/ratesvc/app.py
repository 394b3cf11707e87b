"""The Litestar application: ``create_app(settings, plugins)`` and its core lifespan.

Start-up order (shutdown is the reverse): connect Redis, PostgreSQL and the
HTTP client; apply migrations; build ``Services`` and start the drainer (it
holds ``services.sinks``, so it sees the sinks the features add); then each
feature plugin's lifespan, in order, adds its sinks and starts its sources.
At shutdown each feature, last first, stops its sources and then runs its
``stop``; after that the queue is drained into the stores, the drainer stops,
and only then are the connections closed.  ``ratesvc.plugin`` has the details.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
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
from ratesvc.api.limits import MAX_BODY_BYTES, RequestLimitsMiddleware
from ratesvc.api.metrics import RequestMetrics, RequestMetricsMiddleware
from ratesvc.api.ops import OPS_ROUTES, service_registry
from ratesvc.config import Settings, SettingsError, load_settings
from ratesvc.header_timeout import HEADER_TIMEOUTS
from ratesvc.log import configure_logging, get_logger
from ratesvc.migrate import apply_migrations
from ratesvc.pipeline import Drainer, UpdateQueue
from ratesvc.plugin import FeaturePlugin
from ratesvc.ratelimit import rate_limit_plugin
from ratesvc.redact import redact_url
from ratesvc.retry import backoff_delays, retry
from ratesvc.services import Services
from ratesvc.supervisor import Supervisor

log = get_logger("app")

DRAINER_TASK = "drainer"
METRICS_TASK = "metrics_export"
REDIS_CONNECT_TIMEOUT_S = 1.0
REDIS_SOCKET_TIMEOUT_S = 2.0
"""A hung Redis answers requests with 503 after this, not redis-py's 5 s (longest block: 1 s)."""


def default_plugins() -> list[FeaturePlugin[Any]]:
    """The features a served app runs, in start-up order (each may use those before it)."""
    from ratesvc.courses.plugin import CoursesPlugin  # noqa: PLC0415
    from ratesvc.events.plugin import EventsPlugin  # noqa: PLC0415
    from ratesvc.stocks.plugin import StocksPlugin  # noqa: PLC0415

    return [CoursesPlugin(), StocksPlugin(), EventsPlugin()]


async def _connect_postgres(url: str, attempts: int = 20) -> asyncpg.Pool:
    """Replicas may start before the database accepts connections; wait a little."""

    async def connect() -> asyncpg.Pool:
        pool: asyncpg.Pool = await asyncpg.create_pool(
            url, min_size=1, max_size=10, command_timeout=30
        )
        return pool

    return await retry(
        connect,
        on=(OSError, asyncpg.PostgresError, asyncpg.InterfaceError),
        attempts=attempts,
        delays=backoff_delays(0.2, 2.0),
        what="postgres_connect",
    )


@asynccontextmanager
async def _lifespan(app: Litestar) -> AsyncIterator[None]:
    settings: Settings = app.state.settings
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

        services.drainer = Drainer(
            services.queue,
            services.sinks,
            batch_max=settings.drain_batch_max,
            flush_interval_s=settings.drain_flush_interval_s,
        )
        supervisor.start(DRAINER_TASK, services.drainer.run)
        if worker_metrics is not None:
            supervisor.start(METRICS_TASK, worker_metrics.run)
        try:
            yield  # the features' lifespans run here (ratesvc.plugin)
        finally:
            grace = settings.shutdown_grace_s
            # Whatever a feature did not stop itself (normally nothing but the drainer).
            await supervisor.stop([n for n in supervisor.names if n != DRAINER_TASK], grace)
            if not await services.queue.join(grace):
                log.warning("queue_not_drained_at_shutdown", depth=services.queue.depth)
            await supervisor.stop([DRAINER_TASK], grace_s=grace)
            if worker_metrics is not None:
                worker_metrics.write()  # this worker's final counts stay in the totals
            log.info("app_stopped")


def create_app(
    settings: Settings,
    plugins: Sequence[FeaturePlugin[Any]] | None = None,
) -> Litestar:
    """The app with ``plugins`` (by default ``default_plugins()``), fresh instances only."""
    if settings.redis_url is None or settings.database_url is None:
        raise SettingsError(
            "RATESVC_REDIS_URL and RATESVC_DATABASE_URL must be set "
            "(`ratesvc serve` starts embedded servers when they are not)"
        )
    chosen = list(default_plugins() if plugins is None else plugins)
    routes: list[Any] = [*OPS_ROUTES]
    request_metrics = RequestMetrics(app_name="ratesvc", prefix="ratesvc")
    cors = CORSConfig(allow_origins=list(settings.cors_origins)) if settings.cors_origins else None
    middleware: list[Any] = [
        DefineMiddleware(RequestMetricsMiddleware, metrics=request_metrics),
        DefineMiddleware(RequestLimitsMiddleware, max_body_bytes=MAX_BODY_BYTES),
    ]
    if (limiting := rate_limit_plugin(settings)) is not None:
        chosen.insert(0, limiting)  # its middleware goes after the two above
    return Litestar(
        route_handlers=routes,
        lifespan=[_lifespan],
        plugins=chosen,
        middleware=middleware,
        cors_config=cors,
        exception_handlers={
            HTTPException: http_exception_handler,
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
        state=State({"settings": settings, "request_metrics": request_metrics}),
        debug=False,
        logging_config=None,
    )


def create_app_from_env() -> Litestar:
    """Entry point for uvicorn worker processes (``factory=True``)."""
    settings = load_settings()
    configure_logging(settings.log_level, settings.secrets)
    return create_app(settings)
