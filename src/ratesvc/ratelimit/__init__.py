"""Per-client rate limiting on every route, shared across replicas through Redis."""

from __future__ import annotations

from litestar.middleware import DefineMiddleware

from ratesvc.config import Settings
from ratesvc.ratelimit.limiter import RateLimiter
from ratesvc.ratelimit.middleware import RateLimitMiddleware

__all__ = ["RateLimitMiddleware", "RateLimiter", "rate_limit_middleware"]


def rate_limit_middleware(settings: Settings) -> DefineMiddleware | None:
    """The middleware that enforces RATESVC_RATE_LIMIT, or None when disabled."""
    if not settings.rate_limit_enabled:
        return None
    limit, period_s = settings.rate_limit_parsed
    limiter = RateLimiter(limit, period_s, settings.rate_limit_sync_interval_s)
    return DefineMiddleware(RateLimitMiddleware, limiter=limiter, trust_proxy=settings.trust_proxy)
