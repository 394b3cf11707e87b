"""The rate limiter as a plugin: ``RateLimitPlugin`` puts the limiter in front of every route (the middleware),
counts what no route took (the app's 404/405 handler, ``unrouted.py``), and
starts the limiter's merge into Redis in the app's lifespan, like every other
supervised task.
"""

from __future__ import annotations

from litestar.config.app import AppConfig
from litestar.exceptions import HTTPException
from litestar.middleware import DefineMiddleware

from ratesvc.api.errors import http_exception_handler
from ratesvc.config import Settings
from ratesvc.log import get_logger
from ratesvc.plugin import FeaturePlugin
from ratesvc.ratelimit.limiter import RateLimiter
from ratesvc.ratelimit.middleware import RateLimitMiddleware
from ratesvc.ratelimit.unrouted import limit_unrouted
from ratesvc.services import Services

log = get_logger("ratelimit")

MERGE_TASK = "ratelimit-merge"


class RateLimitPlugin(FeaturePlugin[RateLimiter]):
    """One limiter, counted on two paths: routed requests and those the router refused."""

    name = "ratelimit"
    state_type = RateLimiter

    def __init__(self, limiter: RateLimiter, *, trust_proxy: bool) -> None:
        super().__init__()
        self.limiter = limiter
        self.trust_proxy = trust_proxy

    def on_app_init(self, app_config: AppConfig) -> AppConfig:
        app_config.middleware.append(
            DefineMiddleware(
                RateLimitMiddleware, limiter=self.limiter, trust_proxy=self.trust_proxy
            )
        )
        handlers = app_config.exception_handlers
        around = handlers.get(HTTPException, http_exception_handler)
        handlers[HTTPException] = limit_unrouted(around, self.limiter, self.trust_proxy)
        return super().on_app_init(app_config)

    async def start(self, services: Services) -> RateLimiter:
        limiter = self.limiter
        services.supervisor.start(MERGE_TASK, lambda: limiter.run(services.redis))
        services.metric_sources.append(limiter.collect)
        log.info(
            "rate_limit_active",
            limit=limiter.limit,
            period_s=limiter.period_s,
            sync_interval_s=limiter.sync_interval_s,
        )
        return limiter


def rate_limit_plugin(settings: Settings) -> RateLimitPlugin | None:
    """What enforces RATESVC_RATE_LIMIT, or None when disabled."""
    if not settings.rate_limit_enabled:
        return None
    limit, period_s = settings.rate_limit_parsed
    limiter = RateLimiter(
        limit,
        period_s,
        settings.rate_limit_sync_interval_s,
        max_clients=settings.rate_limit_max_clients,
    )
    return RateLimitPlugin(limiter, trust_proxy=settings.trust_proxy)
