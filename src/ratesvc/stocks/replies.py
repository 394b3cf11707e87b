"""What every stock route's answer is made of: the query it read, its headers, its errors.

The aggregates route and each gateway endpoint compute their ``Reply`` from
the raw ASGI scope in one function (see ``api/raw.py``); these are the parts
they share, so that both forms of a route (the raw layer and the documented
handler) and every route read a request and spell an answer the same way.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from functools import lru_cache
from typing import Any
from urllib.parse import parse_qsl

import msgspec
from litestar.connection import ASGIConnection
from litestar.types import Scope
from redis.exceptions import RedisError

from ratesvc.api.errors import error_code
from ratesvc.api.raw import Headers, Reply, ScopeAnswer, json_reply
from ratesvc.log import get_logger
from ratesvc.plugin import state_of
from ratesvc.stocks.errors import UpstreamError
from ratesvc.stocks.models import CacheStatus
from ratesvc.stocks.state import StocksState

log = get_logger("stocks.http")

STALE_WARNING = b'110 - "Response is Stale"'
X_CACHE_MISS = (b"x-cache", b"MISS")
_X_CACHE = {
    status: [(b"x-cache", status.encode())] for status in ("HIT", "MISS", "PARTIAL", "COALESCED")
}
_X_CACHE["STALE"] = [(b"x-cache", b"STALE"), (b"warning", STALE_WARNING)]

_encode = msgspec.json.Encoder().encode


@lru_cache(maxsize=4096)
def first_values(query_string: bytes) -> Mapping[str, str]:
    """The query string as Litestar's ``request.query_params.get`` reads it: the first value of each name.

    Cached: a frontend asks the same few query strings over and over.  The
    mapping is shared between callers, who only read it.
    """
    params: dict[str, str] = {}
    for name, value in parse_qsl(query_string.decode("latin-1"), keep_blank_values=True):
        params.setdefault(name, value)
    return params


def cache_headers(cache: CacheStatus) -> Headers:
    """``X-Cache``, and ``Warning: 110`` on a stale answer."""
    return _X_CACHE[cache]


def error_reply(status: int, detail: str, *headers: tuple[bytes, bytes], **fields: Any) -> Reply:
    """The JSON error shape of ``api/errors.py``, ``{"error", "detail", ...}``."""
    body = _encode({"error": error_code(status), "detail": detail, **fields})
    return json_reply(status, body, *headers)


def failure_reply(exc: UpstreamError | RedisError) -> Reply:
    """Polygon's trouble as its status (with ``Retry-After`` when it says), or Redis's as 503."""
    if isinstance(exc, UpstreamError):
        failure = exc.failure
        retry = [(b"retry-after", v.encode()) for v in failure.headers().values()]
        return error_reply(
            failure.status, failure.detail, X_CACHE_MISS, *retry, upstream=failure.kind
        )
    log.warning("stocks_cache_unavailable", error=type(exc).__name__)
    return error_reply(503, "the bar cache is unavailable; retry later")


def base_url(scope: Scope) -> str:
    """This service's URL as the client reached it, without a trailing slash (for ``next_url``)."""
    return str(ASGIConnection[Any, Any, Any, Any](scope).base_url).rstrip("/")


StateAnswer = Callable[[Scope, StocksState], Awaitable[Reply]]
"""A stock route's answer function: the raw ASGI scope and the feature's state -> Reply."""


def with_state(answer: StateAnswer) -> ScopeAnswer:
    """``answer`` for a raw ASGI layer, which has no dependency injection: the state from the app."""

    async def answered(scope: Scope) -> Reply:
        return await answer(scope, state_of(scope["app"], StocksState))

    return answered
