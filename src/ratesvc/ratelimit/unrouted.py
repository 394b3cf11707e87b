"""Requests the router refuses count against the limit too.

Litestar runs middleware per route handler, so a request for an unknown path
(404), with a method the path does not take (405) or a bad host header is
answered from the app's exception handler without passing any middleware.
Left uncounted, a client could probe or flood unknown paths at any rate.
This wraps that exception handler: such a request is counted like any other,
refused with the same 429, and its answer carries the same RateLimit headers.
Errors raised by a route's own handler were counted by the middleware already.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from litestar import MediaType, Request, Response
from litestar.exceptions import HTTPException

from ratesvc.ratelimit.limiter import RateLimiter
from ratesvc.ratelimit.middleware import Header, allowance_headers, count_request, refusal

ExceptionHandler = Callable[[Request[Any, Any, Any], HTTPException], Response[Any]]


def limit_unrouted(
    handler: ExceptionHandler, limiter: RateLimiter, trust_proxy: bool
) -> ExceptionHandler:
    """``handler``, counting (and refusing past the limit) requests no route took."""

    def handle(request: Request[Any, Any, Any], exc: HTTPException) -> Response[Any]:
        scope: Any = request.scope  # typed as routed; here it may not be
        if "route_handler" in scope:  # routed: the middleware counted it
            return handler(request, exc)
        remaining, reset = count_request(limiter, request.scope, trust_proxy)
        if remaining < 0:
            body, headers = refusal(limiter, reset)
            return Response(
                body, status_code=429, media_type=MediaType.JSON, headers=_as_dict(headers)
            )
        response = handler(request, exc)
        response.headers.update(_as_dict(allowance_headers(limiter, remaining, reset)))
        return response

    return handle


def _as_dict(headers: list[Header]) -> dict[str, str]:
    return {name.decode(): value.decode() for name, value in headers}
