"""One Litestar route per declared gateway endpoint, all built by ``gateway_route``.

Each endpoint's answer is computed by one function (``answer_of``) from the
raw ASGI scope: the route's raw layer sends it before Litestar builds a
request or a response, and the documented handler returns the same reply
(``routes(raw=False)`` leaves the raw layer out, for the test that compares
both forms).  The client's ``Authorization`` header and ``apiKey`` are never
read; every answer carries ``X-Cache`` (and a stale one ``Warning: 110``);
Polygon's own 404 (no such day or ticker) is passed on as it came.
"""

from __future__ import annotations

from typing import Any

from litestar import Request, get
from litestar.di import NamedDependency
from litestar.handlers import HTTPRouteHandler
from litestar.response.base import ASGIResponse
from litestar.types import Scope
from redis.exceptions import RedisError

from ratesvc.api.raw import Reply, answered_by, json_reply, to_asgi_response
from ratesvc.stocks import replies
from ratesvc.stocks.catalog import ENDPOINTS
from ratesvc.stocks.endpoints import Endpoint
from ratesvc.stocks.errors import UpstreamError
from ratesvc.stocks.gateway import rebase_next_url
from ratesvc.stocks.query import QueryError
from ratesvc.stocks.state import StocksState


def answer_of(endpoint: Endpoint) -> replies.StateAnswer:
    """The answer function of ``endpoint``'s route."""

    async def answer(scope: Scope, state: StocksState) -> Reply:
        try:
            wanted = endpoint.request(
                scope["path_params"], replies.first_values(scope["query_string"])
            )
        except QueryError as exc:
            return replies.error_reply(400, str(exc), replies.X_CACHE_MISS)
        try:
            found = await state.gateway.document(wanted)
        except (UpstreamError, RedisError) as exc:
            return replies.failure_reply(exc)
        body = found.body
        if endpoint.paged:
            body = rebase_next_url(body, replies.base_url(scope))
        return json_reply(found.status, body, *replies.cache_headers(found.cache))

    answer.__name__ = answer.__qualname__ = f"polygon_{endpoint.name}_answer"
    return answer


def gateway_route(endpoint: Endpoint, *, raw: bool = True) -> HTTPRouteHandler:
    answer = answer_of(endpoint)

    async def handler(
        request: Request[Any, Any, Any], stocks_state: NamedDependency[StocksState]
    ) -> ASGIResponse:
        return to_asgi_response(await answer(request.scope, stocks_state))

    handler.__name__ = handler.__qualname__ = f"polygon_{endpoint.name}"
    return get(
        endpoint.route_path,
        name=f"polygon_{endpoint.name}",
        operation_id=f"polygon_{endpoint.name}",
        middleware=[answered_by(replies.with_state(answer))] if raw else None,
        tags=["stocks"],
        summary=endpoint.summary,
        description=(
            f"Polygon's {endpoint.path}, same query parameters ({', '.join(endpoint.params)})"
            " and answer. X-Cache: HIT, MISS, COALESCED or STALE."
        ),
    )(handler)


def gateway_routes(*, raw: bool = True) -> list[HTTPRouteHandler]:
    return [gateway_route(endpoint, raw=raw) for endpoint in ENDPOINTS]
