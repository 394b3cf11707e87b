"""Per-client rate limiting on every route, shared across replicas through Redis."""

from __future__ import annotations

from dataclasses import dataclass

from litestar.middleware import DefineMiddleware

from ratesvc.config import Settings
from ratesvc.ratelimit.limiter import RateLimiter
from ratesvc.ratelimit.middleware import RateLimitMiddleware
from ratesvc.ratelimit.unrouted import ExceptionHandler, limit_unrouted

__all__ = [
    "ExceptionHandler",
    "RateLimitMiddleware",
    "RateLimiter",
    "RateLimiting",
    "rate_limiting",
]


@dataclass(frozen=True)
class RateLimiting:
    """One limiter, counted on two paths: routed requests and those the router refused."""

    limiter: RateLimiter
    trust_proxy: bool

    @property
    def middleware(self) -> DefineMiddleware:
        return DefineMiddleware(
            RateLimitMiddleware, limiter=self.limiter, trust_proxy=self.trust_proxy
        )

    def around(self, handler: ExceptionHandler) -> ExceptionHandler:
        """The app's HTTPException handler, counting requests no route took (404, 405)."""
        return limit_unrouted(handler, self.limiter, self.trust_proxy)


def rate_limiting(settings: Settings) -> RateLimiting | None:
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
    return RateLimiting(limiter, settings.trust_proxy)
