"""Property tests of every parser of upstream (and client) data: any bytes in, never a crash.

Each parser either returns typed values or rejects the input in the one way its
caller handles; no price that is NaN, infinite, zero, negative or absurd gets through.
"""

from __future__ import annotations

import contextlib
import json
import math
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ratesvc.courses.binance import ServerShutdownError, parse_frame
from ratesvc.courses.coingecko import parse_simple_price, retry_after_s
from ratesvc.events.model import BadEventError, Event, parse_body
from ratesvc.models import MAX_PRICE, Quote
from ratesvc.stocks.models import PolygonAggsPage
from ratesvc.stocks.upstream import _decode_error, _decode_page, parse_retry_after

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
FAST = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Numbers as an upstream might spell them, in JSON or in Binance's strings.
number_texts = st.one_of(
    st.sampled_from(
        [
            "NaN",
            "nan",
            "-NaN",
            "sNaN",
            "Infinity",
            "-Infinity",
            "inf",
            "1e999999",
            "-0",
            "0",
            "0.0",
            "-1",
            "1e12",
            "9.99e11",
            "1e-30",
            "",
            " ",
            "1_000",
            "0x10",
            "١٢٣",
        ]
    ),
    st.decimals(allow_nan=True, allow_infinity=True).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.integers().map(str),
    st.text(max_size=20),
)
json_numbers = st.one_of(
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from(["1e999", "-1e999", "1e-999", "0", "-0.0", "123456789012345678901234567890"]),
)


def assert_valid(quote: Quote) -> None:
    assert isinstance(quote.value, Decimal)
    assert quote.value.is_finite()
    assert 0 < quote.value < MAX_PRICE


# --- Binance websocket frames ------------------------------------------------


def _binance(raw: str | bytes) -> Quote | None:
    try:
        quote = parse_frame(raw, NOW)
    except ServerShutdownError:
        return None
    if quote is not None:
        assert_valid(quote)
    return quote


@FAST
@given(st.binary(max_size=300))
def test_binance_any_bytes(raw: bytes) -> None:
    _binance(raw)


@FAST
@given(st.text(max_size=300))
def test_binance_any_text(raw: str) -> None:
    _binance(raw)


@FAST
@given(
    price=number_texts,
    symbol=st.text(max_size=12),
    event=st.sampled_from(["24hrMiniTicker", "serverShutdown", "trade", "", "24hrTicker"]),
    extra=st.dictionaries(st.text(max_size=3), st.integers() | st.text(max_size=5), max_size=3),
    as_number=st.booleans(),
)
def test_binance_frames_of_the_right_shape_with_any_values(
    price: str, symbol: str, event: str, extra: dict[str, Any], as_number: bool
) -> None:
    data: dict[str, Any] = {**extra, "e": event, "E": 1, "s": symbol, "c": price}
    if as_number:
        with contextlib.suppress(ValueError):
            data["c"] = json.loads(price)
    quote = _binance(json.dumps({"stream": "btcusdt@miniTicker", "data": data}))
    if quote is not None:
        assert quote.market == symbol


# --- CoinGecko /simple/price ---------------------------------------------------


def _coingecko(body: bytes) -> list[Quote]:
    try:
        quotes = parse_simple_price(body, NOW)
    except ValueError:
        return []  # the poller logs it and retries with backoff
    for quote in quotes:
        assert_valid(quote)
    return quotes


@FAST
@given(st.binary(max_size=300))
def test_coingecko_any_bytes(body: bytes) -> None:
    _coingecko(body)


@FAST
@given(
    st.dictionaries(
        st.text(max_size=10),
        st.dictionaries(st.text(max_size=6), json_numbers | st.none(), max_size=4),
        max_size=4,
    )
)
def test_coingecko_bodies_of_the_right_shape_with_any_numbers(
    coins: dict[str, dict[str, Any]],
) -> None:
    text = json.dumps(coins)
    for raw in ("1e999", "-1e999", "1e-999", "-0.0", "123456789012345678901234567890"):
        text = text.replace(f'"{raw}"', raw)  # numbers JSON allows but Python would not write
    _coingecko(text.encode())


@FAST
@given(st.one_of(st.none(), st.text(max_size=40), number_texts))
def test_retry_after_headers_are_always_a_bounded_delay(header: str | None) -> None:
    delay = retry_after_s(header, 60.0)
    assert 0 <= delay <= 3600
    parsed = parse_retry_after(header)
    assert parsed is None or (math.isfinite(parsed) and parsed >= 0)


# --- Polygon aggregates ---------------------------------------------------------


def _polygon(body: bytes) -> PolygonAggsPage | None:
    try:
        page = _decode_page(body)
    except msgspec.DecodeError:  # the client answers 502 "unreadable answer" and logs it
        return None
    for bar in page.results or ():
        stored = bar.to_bar()
        for price in (stored.o, stored.c, stored.h, stored.l):
            assert math.isfinite(price)
            assert price > 0
        assert math.isfinite(stored.v)
        assert stored.v >= 0
    return page


@FAST
@given(st.binary(max_size=300))
def test_polygon_any_bytes(body: bytes) -> None:
    _polygon(body)
    with contextlib.suppress(msgspec.DecodeError):
        _decode_error(body)


@FAST
@given(
    st.lists(
        st.fixed_dictionaries(
            dict.fromkeys(("v", "o", "c", "h", "l", "t"), json_numbers),
            optional={"vw": json_numbers, "n": json_numbers, "otc": st.booleans()},
        ),
        max_size=5,
    ),
    st.sampled_from(["OK", "DELAYED", "ERROR", ""]),
)
def test_polygon_pages_of_the_right_shape_with_any_numbers(
    bars: list[dict[str, Any]], status: str
) -> None:
    text = json.dumps({"status": status, "results": bars, "resultsCount": len(bars)})
    for raw in ("1e999", "-1e999", "1e-999", "-0.0", "123456789012345678901234567890"):
        text = text.replace(f'"{raw}"', raw)
    _polygon(text.encode())


@pytest.mark.parametrize("price", ["0", "-1.5", "0.0"])
def test_polygon_page_with_a_non_positive_price_is_refused(price: str) -> None:
    body = '{"status":"OK","results":[{"v":1,"o":PRICE,"c":1,"h":1,"l":1,"t":0}]}'
    assert _polygon(body.replace("PRICE", "1").encode()) is not None
    body = body.replace("PRICE", price)
    assert _polygon(body.encode()) is None


# --- Client bodies of POST /v1/events -----------------------------------------------


@FAST
@given(st.binary(max_size=300))
def test_event_bodies_any_bytes(body: bytes) -> None:
    try:
        events = parse_body(body)
    except BadEventError:
        return  # answered 400 naming the field
    assert all(isinstance(event, Event) for event in events)
