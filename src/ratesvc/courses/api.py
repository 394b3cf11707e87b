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
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import msgspec
from litestar import Request, get
from litestar.datastructures import State
from litestar.handlers import HTTPRouteHandler
from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.spec import Example, OpenAPIType, Operation, Schema
from litestar.openapi.spec import Parameter as QueryParameter
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
from ratesvc.courses.convert import Conversion
from ratesvc.courses.directions import DIRECTIONS, QUOTES, SOURCES
from ratesvc.courses.local import Answer
from ratesvc.courses.query import QueryError
from ratesvc.courses.render import Courses, Unavailable
from ratesvc.log import get_logger
from ratesvc.supervisor import STORE_ERRORS

if TYPE_CHECKING:
    from ratesvc.courses.feature import CoursesState

log = get_logger("courses.http")

KEEPALIVE_S = 15.0


def _state(scope: Scope) -> CoursesState:
    state: CoursesState = scope["app"].state.services.extras["courses"]
    return state


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
    state = _state(scope)
    return await _reply(scope, state.queries.parse, state.answers.answer)


async def convert_answer(scope: Scope) -> Reply:
    """The answer of ``GET /v1/convert`` to this request."""
    state = _state(scope)
    return await _reply(scope, state.conversions.queries.parse, state.conversions.answer)


# --- The OpenAPI document: parameters, examples, answers -------------------------------------


class ErrorBody(msgspec.Struct, omit_defaults=True):
    """Only for the OpenAPI document: the error shape of ``api/errors.py``."""

    error: str
    detail: str
    valid: list[str] | None = None


def _parameter(name: str, description: str, schema: Schema, *examples: Any) -> QueryParameter:
    return QueryParameter(
        name=name,
        param_in="query",
        description=description,
        required=False,
        schema=schema,
        examples={f"{name}-{i}": Example(value=value) for i, value in enumerate(examples)},
    )


def _documented(*parameters: QueryParameter) -> type[Operation]:
    """An Operation with query parameters the handler does not take as arguments: both
    wrappers parse the raw query string with the one parser, so Litestar must not."""

    @dataclass
    class Documented(Operation):
        def __post_init__(self) -> None:
            self.parameters = [*(self.parameters or []), *parameters]

    return Documented


_NAMES = [d.name for d in DIRECTIONS]
_STRING = Schema(type=OpenAPIType.STRING)
_ROW = {"direction": "BTC-USD", "value": 67158.9076, "source": "binance"}
_UPDATED = "2026-11-21T18:07:29.812000Z"
_UNAVAILABLE = ResponseSpec(
    Unavailable,
    generate_examples=False,
    description="No fresh rate for the directions asked (or storage unreachable); `Retry-After: 1`",
    examples=[
        Example(
            value={
                "error": "service_unavailable",
                "detail": "no fresh rate for BTC-RUB",
                "directions": ["BTC-RUB"],
            }
        )
    ],
)
_NOT_MODIFIED = ResponseSpec(None, description="`If-None-Match` names the current ETag")


def _bad_request(detail: str, valid: Sequence[str]) -> ResponseSpec:
    return ResponseSpec(
        ErrorBody,
        generate_examples=False,
        description="A bad parameter, named in `detail`, with the valid values",
        examples=[Example(value={"error": "bad_request", "detail": detail, "valid": list(valid)})],
    )


COURSES_DOC: dict[str, Any] = {
    "tags": ["courses"],
    "summary": "Current rates of BTC, ETH and USDT (and configured assets) in USD and RUB",
    "description": (
        "Without `exchanger`, each direction comes from the best fresh source (binance, then "
        "coingecko); directions with no fresh value are listed in `missing` (or the answer is "
        "503, see RATESVC_PARTIAL_COURSES). With `exchanger`, that source's last values are "
        "given, each row marked `stale` when older than the freshness limit. Values are case-"
        "insensitive; an empty value (`direction=`, `exchanger=`) is no filter. Strong ETag; "
        "send If-None-Match for a 304."
    ),
    "operation_class": _documented(
        _parameter(
            "exchanger",
            "Answer from this source only: " + ", ".join(SOURCES),
            Schema(type=OpenAPIType.STRING, enum=[*SOURCES, ""]),
            "binance",
            "CoinGecko",
        ),
        _parameter(
            "direction",
            "Directions to answer, repeated or comma-separated, in any order and case; rows "
            "come in the table's order, each once",
            Schema(type=OpenAPIType.ARRAY, items=_STRING),
            ["BTC-USD"],
            ["eth-rub,BTC-USD", "usdttrc-usd"],
        ),
    ),
    "responses": {
        200: ResponseSpec(
            Courses,
            generate_examples=False,
            description="The rates; `ETag` and `Cache-Control: public, max-age=1, must-revalidate`",
            examples=[
                Example(
                    value={
                        "exchanger": "binance",
                        "courses": [
                            {**_ROW, "updated_at": _UPDATED},
                            {
                                "direction": "BTC-RUB",
                                "value": 6210842.1416719,
                                "source": "binance",
                                "updated_at": _UPDATED,
                                "legs": [
                                    "binance:BTCUSDT",
                                    "coingecko:tether/rub",
                                    "coingecko:tether/usd",
                                ],
                            },
                        ],
                    }
                )
            ],
        ),
        304: _NOT_MODIFIED,
        400: _bad_request("unknown direction: DOGE-USD", _NAMES),
        503: _UNAVAILABLE,
    },
}

_ASSETS = [*dict.fromkeys(d.name.rsplit("-", 1)[0] for d in DIRECTIONS), *QUOTES]
CONVERT_DOC: dict[str, Any] = {
    "tags": ["courses"],
    "summary": "Convert an amount between an asset and a fiat currency (or two assets)",
    "description": (
        "`from` and `to`: an asset of the direction table and a fiat currency (USD, RUB) in "
        "either order, or two assets (a cross through USD, with its legs). The rate of asset A "
        "in fiat F is the value `/v1/courses?direction=A-F` serves at that moment (same "
        "freshness and failover; no fresh rate: 503); fiat to asset uses 1/that value. "
        "`result` is computed in decimal and rounded half-even to 8 decimal places; a derived "
        "`rate` has 16 significant digits. Case-insensitive; an empty value is as if absent."
    ),
    "operation_class": _documented(
        _parameter(
            "from",
            "Asset or fiat to convert from (required)",
            _STRING,
            "BTC",
            "rub",
        ),
        _parameter("to", "Asset or fiat to convert to (required)", _STRING, "RUB", "eth"),
        _parameter(
            "amount",
            "A positive decimal, at most 1e15 and 18 decimal places; default 1",
            _STRING,
            "0.5",
            "1000",
        ),
    ),
    "responses": {
        200: ResponseSpec(
            Conversion,
            generate_examples=False,
            description="The conversion; `ETag` and `Cache-Control` as `/v1/courses`",
            examples=[
                Example(
                    value={
                        "from": "BTC",
                        "to": "RUB",
                        "amount": 0.5,
                        "rate": 6210842.1416719,
                        "result": 3105421.07083595,
                        "source": "binance",
                        "updated_at": _UPDATED,
                        "legs": ["binance:BTCUSDT", "coingecko:tether/rub", "coingecko:tether/usd"],
                    }
                ),
                Example(
                    value={
                        "from": "BTC",
                        "to": "ETH",
                        "amount": 1,
                        "rate": 19.38504113440522,
                        "result": 19.38504113,
                        "source": "binance",
                        "updated_at": _UPDATED,
                        "legs": ["binance:BTC-USD", "binance:ETH-USD"],
                    }
                ),
            ],
        ),
        304: _NOT_MODIFIED,
        400: _bad_request("unknown asset in `from`: DOGE", _ASSETS),
        503: _UNAVAILABLE,
    },
}


# --- The routes ------------------------------------------------------------------------------


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
    summary="Server-Sent Events: the default /v1/courses answer, pushed on every change",
)
async def courses_stream(state: State) -> ServerSentEvent:
    courses_state: CoursesState = state.services.extras["courses"]
    broadcaster = courses_state.broadcaster

    async def events() -> AsyncIterator[ServerSentEventMessage]:
        queue = broadcaster.subscribe()
        try:
            first = await courses_state.answers.answer(courses_state.queries.query(None))
            yield ServerSentEventMessage(data=first.reply.body.decode(), event="courses")
            while True:
                try:
                    async with asyncio.timeout(KEEPALIVE_S):
                        body = await queue.get()
                except TimeoutError:
                    yield ServerSentEventMessage(comment="keepalive")
                    continue
                yield ServerSentEventMessage(data=body.decode(), event="courses")
        finally:
            broadcaster.unsubscribe(queue)

    return ServerSentEvent(events(), headers={"Cache-Control": "no-store"})


def routes(*, raw: bool = True) -> list[HTTPRouteHandler]:
    """The feature's routes; ``raw=False`` leaves out the raw ASGI layers (for the test that
    compares both forms of each route)."""
    return [
        _route("/v1/courses", courses_answer, COURSES_DOC, raw=raw),
        _route("/v1/convert", convert_answer, CONVERT_DOC, raw=raw),
        courses_stream,
    ]
