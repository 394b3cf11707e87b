"""The rate-limit ASGI middleware: raw ASGI, so the hot routes pay only the count.

Litestar builds one instance per route handler (a request the router refuses,
404 or 405, never reaches one: ``unrouted.py`` counts those); they all share one
``RateLimiter``, whose merge into Redis ``RateLimitPlugin`` runs in the lifespan.
Until it runs (and whenever Redis is unreachable) the limiter counts locally.
"""

from __future__ import annotations

import time

from litestar.enums import ScopeType
from litestar.types import (
    ASGIApp,
    Message,
    Receive,
    Scope,
    Send,
)

from ratesvc.api.raw import json_reply, send_reply
from ratesvc.ratelimit.client import client_key
from ratesvc.ratelimit.limiter import RateLimiter

Header = tuple[bytes, bytes]
EXEMPT_OPT = "exempt_from_rate_limit"


class RateLimitMiddleware:
    def __init__(self, app: ASGIApp, limiter: RateLimiter, trust_proxy: bool) -> None:
        self.app = app
        self.limiter = limiter
        self.trust_proxy = trust_proxy

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP or scope["route_handler"].opt.get(EXEMPT_OPT):
            await self.app(scope, receive, send)
            return
        remaining, reset = count_request(self.limiter, scope, self.trust_proxy)
        if remaining < 0:
            body, headers = refusal(self.limiter, reset)
            await _send_refusal(send, body, headers)
            return
        headers = allowance_headers(self.limiter, remaining, reset)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", ()), *headers]
            await send(message)

        await self.app(scope, receive, send_with_headers)


def count_request(limiter: RateLimiter, scope: Scope, trust_proxy: bool) -> tuple[int, bytes]:
    """Count the request: (remaining allowance or -1 if refused, seconds to the reset)."""
    now = time.time()
    remaining = limiter.hit(client_key(scope, trust_proxy), now)
    return remaining, str(limiter.reset_in(now)).encode()


def allowance_headers(limiter: RateLimiter, remaining: int, reset: bytes) -> list[Header]:
    return [
        (b"ratelimit-limit", str(limiter.limit).encode()),
        (b"ratelimit-remaining", str(remaining).encode()),
        (b"ratelimit-reset", reset),
    ]


def refusal(limiter: RateLimiter, reset: bytes) -> tuple[bytes, list[Header]]:
    """The 429's JSON body and headers (besides content-type and length)."""
    # The app's error shape ({"error", "detail", ...}), built here without Litestar's
    # response machinery because a flood of 429s should be the cheapest answer.
    body = (
        b'{"error":"too_many_requests","detail":"rate limit of %d requests per %d s '
        b'exceeded; retry after %s s","retry_after":%s}'
        % (limiter.limit, limiter.period_s, reset, reset)
    )
    return body, [(b"retry-after", reset), *allowance_headers(limiter, 0, reset)]


async def _send_refusal(send: Send, body: bytes, headers: list[Header]) -> None:
    await send_reply(send, json_reply(429, body, *headers))
