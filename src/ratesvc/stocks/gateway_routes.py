"""One Litestar route per declared gateway endpoint, all built by ``gateway_route``.

The client's ``Authorization`` header and ``apiKey`` are never read; every
answer carries ``X-Cache`` (and a stale one ``Warning: 110``); Polygon's own
404 (no such day or ticker) is passed on as it came.
"""

from __future__ import annotations

from typing import Any

from litestar import MediaType, Request, Response, get
from litestar.datastructures import State
from litestar.handlers import HTTPRouteHandler
from redis.exceptions import RedisError

from ratesvc.api.errors import error_response
from ratesvc.stocks.catalog import ENDPOINTS
from ratesvc.stocks.endpoints import Endpoint
from ratesvc.stocks.errors import UpstreamError
from ratesvc.stocks.gateway import Gateway, rebase_next_url
from ratesvc.stocks.query import QueryError
from ratesvc.stocks.routes import STALE_WARNING, failure_response

GATEWAY_KEY = "stocks_gateway"


def gateway_route(endpoint: Endpoint) -> HTTPRouteHandler:
    async def handler(request: Request[Any, Any, Any], state: State) -> Response[Any]:
        gateway: Gateway = state.services.extras[GATEWAY_KEY]
        try:
            wanted = endpoint.request(request.path_params, request.query_params)
        except QueryError as exc:
            return error_response(400, str(exc), headers={"X-Cache": "MISS"})
        try:
            answer = await gateway.document(wanted)
        except (UpstreamError, RedisError) as exc:
            return failure_response(exc)
        body = answer.body
        if endpoint.paged:
            body = rebase_next_url(body, str(request.base_url))
        headers: dict[str, str] = {"X-Cache": answer.cache}
        if answer.cache == "STALE":
            headers["Warning"] = STALE_WARNING
        return Response(body, status_code=answer.status, media_type=MediaType.JSON, headers=headers)

    handler.__name__ = handler.__qualname__ = f"polygon_{endpoint.name}"
    return get(
        endpoint.route_path,
        name=f"polygon_{endpoint.name}",
        operation_id=f"polygon_{endpoint.name}",
        tags=["stocks"],
        summary=endpoint.summary,
        description=(
            f"Polygon's {endpoint.path}, same query parameters ({', '.join(endpoint.params)})"
            " and answer. X-Cache: HIT, MISS, COALESCED or STALE."
        ),
    )(handler)


GATEWAY_ROUTES = [gateway_route(endpoint) for endpoint in ENDPOINTS]
