"""``GET /v1/courses``, ``GET /v1/convert`` and ``GET /v1/courses/stream``.

Each of the two hot routes has one answer function (``courses_answer``,
``convert_answer``): raw ASGI scope in, ``Reply`` (status, headers, body) out,
for every query shape alike.  It parses the query string with one parser,
normalises it, and takes the answer from this process's answer cache
(``local.py``: quotes at most 50 ms old, one rendered answer per normalised
query).  The route's raw ASGI layer sends that reply before Litestar builds a
request or a response (about 3x the requests/s of a plain handler); the
``@get`` handler is the documented form of the same route and returns the
same reply through Litestar.  ``routes(raw=False)`` builds the routes
without the raw layer, which is how a test proves the two agree byte for byte.
Handlers never call an exchange.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Annotated, Any

from litestar import Request, get
from litestar.di import NamedDependency
from litestar.exceptions import ClientException
from litestar.handlers import HTTPRouteHandler
from litestar.params import Parameter
from litestar.response import ServerSentEvent, ServerSentEventMessage
from litestar.response.base import ASGIResponse
from litestar.types import Scope

from ratesvc.api.raw import (
    Reply,
    ScopeAnswer,
    answered_by,
    header,
    json_error,
    to_asgi_response,
    unavailable,
)
from ratesvc.courses.docs import CONVERT_DOC, courses_doc
from ratesvc.courses.local import Answer
from ratesvc.courses.query import QueryError
from ratesvc.courses.state import CoursesState
from ratesvc.courses.stream import filtered
from ratesvc.log import get_logger
from ratesvc.plugin import state_of
from ratesvc.retry import STORE_ERRORS

log = get_logger("courses.http")

KEEPALIVE_S = 15.0


async def _reply(
    scope: Scope, parse: Callable[[bytes], Any], answer: Callable[[Any], Awaitable[Answer]]
) -> Reply:
    """Parse, answer, and pick the full reply or a 304: the steps both routes share."""
    try:
        query = parse(scope["query_string"])
    except QueryError as exc:
        return json_error(400, exc.detail, valid=exc.valid)
    try:
        found = await answer(query)
    except STORE_ERRORS as exc:
        log.warning("store_unavailable", path=scope["path"], error=repr(exc))
        return unavailable("storage temporarily unavailable")
    return found.reply_to(header(scope, b"if-none-match"))


async def courses_answer(scope: Scope) -> Reply:
    """The answer of ``GET /v1/courses`` to this request."""
    state = state_of(scope["app"], CoursesState)
    return await _reply(scope, state.queries.parse, state.answers.answer)


async def convert_answer(scope: Scope) -> Reply:
    """The answer of ``GET /v1/convert`` to this request."""
    state = state_of(scope["app"], CoursesState)
    return await _reply(scope, state.conversions.queries.parse, state.conversions.answer)


def _handler(answer: ScopeAnswer) -> Callable[[Request[Any, Any, Any]], Awaitable[ASGIResponse]]:
    async def handler(request: Request[Any, Any, Any]) -> ASGIResponse:
        return to_asgi_response(await answer(request.scope))

    return handler


def _route(path: str, answer: ScopeAnswer, doc: dict[str, Any], *, raw: bool) -> HTTPRouteHandler:
    handler = _handler(answer)
    handler.__name__ = answer.__name__.removesuffix("_answer")
    middleware = [answered_by(answer)] if raw else None
    return get(path, middleware=middleware, **doc)(handler)


@get(
    "/v1/courses/stream",
    tags=["courses"],
    summary="Server-Sent Events: the /v1/courses answer, pushed on every change",
    description=(
        "Each `courses` event is the answer `/v1/courses` gives for the same query string; "
        "with `direction` (and `exchanger`), that answer, sent only when it changed. A "
        "comment every 15 s keeps idle connections open."
    ),
)
async def courses_stream(
    request: Request[Any, Any, Any],
    courses_state: NamedDependency[CoursesState],
    direction: Annotated[
        list[str] | None,
        Parameter(description="Only these directions, repeated or comma-separated"),
    ] = None,
    exchanger: Annotated[
        str | None, Parameter(description="A source `/v1/courses` accepts: that source only")
    ] = None,
) -> ServerSentEvent:
    del direction, exchanger  # documented here; parsed by the one /v1/courses parser
    try:
        query = courses_state.queries.parse(request.scope["query_string"])
    except QueryError as exc:
        raise ClientException(detail=exc.detail, extra={"valid": exc.valid}) from None
    everything = query.key == courses_state.queries.query(None).key
    broadcaster = courses_state.broadcaster

    async def events() -> AsyncIterator[ServerSentEventMessage]:
        queue = broadcaster.subscribe()
        try:
            last = (await courses_state.answers.answer(query)).reply.body
            yield ServerSentEventMessage(data=last.decode(), event="courses")
            while True:
                try:
                    async with asyncio.timeout(KEEPALIVE_S):
                        body = await queue.get()
                except TimeoutError:
                    yield ServerSentEventMessage(comment="keepalive")
                    continue
                if not everything:
                    body = await filtered(body, query, courses_state)
                    if body == last:
                        continue
                last = body
                yield ServerSentEventMessage(data=body.decode(), event="courses")
        finally:
            broadcaster.unsubscribe(queue)

    return ServerSentEvent(events(), headers={"Cache-Control": "no-store"})


def routes(sources: Sequence[str], *, raw: bool = True) -> list[HTTPRouteHandler]:
    """The feature's routes, documented for ``sources`` (names in failover order);
    ``raw=False`` leaves out the raw ASGI layers (for the test that compares both
    forms of each route)."""
    return [
        _route("/v1/courses", courses_answer, courses_doc(sources), raw=raw),
        _route("/v1/convert", convert_answer, CONVERT_DOC, raw=raw),
        courses_stream,
    ]
