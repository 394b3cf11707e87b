"""Per-client rate limiting on every route, shared across replicas through Redis."""

from __future__ import annotations

from ratesvc.ratelimit.limiter import RateLimiter
from ratesvc.ratelimit.middleware import RateLimitMiddleware
from ratesvc.ratelimit.plugin import RateLimitPlugin, rate_limit_plugin
from ratesvc.ratelimit.unrouted import ExceptionHandler

__all__ = [
    "ExceptionHandler",
    "RateLimitMiddleware",
    "RateLimitPlugin",
    "RateLimiter",
    "rate_limit_plugin",
]
