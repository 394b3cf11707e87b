"""The OpenAPI document of ``/v1/courses`` and ``/v1/convert``: parameters, examples, answers.

Both routes parse the raw query string with their own parser (``query.py``,
``convert.py``), in the raw layer and in the handler alike, so the handlers
take no parameters for Litestar to parse; the parameters are declared here
for the document (and for the schemathesis fuzz test that reads it).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import msgspec
from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.spec import Example, OpenAPIType, Operation, Schema
from litestar.openapi.spec import Parameter as QueryParameter

from ratesvc.courses.convert import Conversion
from ratesvc.courses.directions import DIRECTIONS, QUOTES
from ratesvc.courses.render import Courses, Unavailable
from ratesvc.courses.sources import described


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


def courses_doc(sources: Sequence[str]) -> dict[str, Any]:
    """The document of ``/v1/courses`` for the registry's sources (in failover order)."""
    return {
        "tags": ["courses"],
        "summary": "Current rates of BTC, ETH and USDT (and configured assets) in USD and RUB",
        "description": (
            "Without `exchanger`, each direction comes from the best fresh source ("
            + described(sources)
            + "); directions with no fresh value are listed in `missing` (or the answer is "
            "503, see RATESVC_PARTIAL_COURSES). With `exchanger`, that source's last values are "
            "given, each row marked `stale` when older than the freshness limit. Values are case-"
            "insensitive; an empty value (`direction=`, `exchanger=`) is no filter. Strong ETag; "
            "send If-None-Match for a 304."
        ),
        "operation_class": _documented(
            _parameter(
                "exchanger",
                "Answer from this source only: " + ", ".join(sources),
                Schema(type=OpenAPIType.STRING, enum=[*sources, ""]),
                sources[0],
                sources[-1].capitalize(),
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
