"""Query strings of /v1/courses and /v1/convert -> normalised queries, and the conversion arithmetic."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ratesvc.courses.convert import ConvertQueries, convert, parse_amount
from ratesvc.courses.directions import DIRECTIONS, QUOTES
from ratesvc.courses.plugin import DEFAULT_SOURCES
from ratesvc.courses.query import CoursesQueries, QueryError
from ratesvc.courses.render import Course

NAMES = [d.name for d in DIRECTIONS]
SOURCES = tuple(s.name for s in DEFAULT_SOURCES)
QUERIES = CoursesQueries(DIRECTIONS, SOURCES)
CONVERTS = ConvertQueries(DIRECTIONS, QUOTES)
AT = datetime(2026, 11, 21, 18, 7, 29, 812000, tzinfo=UTC)


@given(
    st.lists(st.sampled_from(NAMES), min_size=1, max_size=8),
    st.sampled_from([None, *SOURCES]),
    st.booleans(),
)
def test_any_order_and_spelling_gives_one_key(
    names: list[str], exchanger: str | None, comma: bool
) -> None:
    spelled = [n.lower() if i % 2 else f" {n} " for i, n in enumerate(names)]
    parts = [f"direction={','.join(spelled)}"] if comma else [f"direction={n}" for n in spelled]
    if exchanger is not None:
        parts.append(f"exchanger={exchanger.upper()}")
    query = QUERIES.parse("&".join(reversed(parts)).encode())
    canonical = QUERIES.query(exchanger, names)
    assert query == canonical
    assert list(query.directions) == [n for n in NAMES if n in names]


def test_all_directions_named_is_the_default_shape() -> None:
    everything = QUERIES.parse(("direction=" + ",".join(reversed(NAMES))).encode())
    assert everything.key == QUERIES.parse(b"").key == "*|*"


@pytest.mark.parametrize(
    "raw", [b"direction=", b"exchanger=", b"direction=&exchanger=", b"direction=,%20,", b"x=1"]
)
def test_an_empty_value_is_no_filter(raw: bytes) -> None:
    assert QUERIES.parse(raw) == QUERIES.parse(b"")


@pytest.mark.parametrize(
    ("raw", "detail"),
    [
        (b"direction=DOGE-USD", "unknown direction: DOGE-USD"),
        (b"direction=BTC-USD,doge-usd", "unknown direction: DOGE-USD"),
        (b"exchanger=kraken", "unknown exchanger: kraken"),
        (b"exchanger=binance&exchanger=coingecko", "exchanger given twice"),
    ],
)
def test_bad_courses_queries(raw: bytes, detail: str) -> None:
    with pytest.raises(QueryError, match=detail):
        QUERIES.parse(raw)


def test_the_same_exchanger_twice_is_harmless() -> None:
    assert QUERIES.parse(b"exchanger=binance&exchanger=Binance").exchanger == "binance"


def test_the_memo_of_spellings_is_bounded() -> None:
    queries = CoursesQueries(DIRECTIONS, SOURCES, memo_max=3)
    for i in range(10):
        queries.parse(f"direction=BTC-USD&n={i}".encode())
    assert len(queries._memo) == 3


@pytest.mark.parametrize(
    ("text", "expected"),
    [(None, "1"), ("", "1"), ("0.5", "0.5"), ("1e3", "1000"), ("0.50", "0.5"), ("1e15", "1e15")],
)
def test_good_amounts(text: str | None, expected: str) -> None:
    assert parse_amount(text) == Decimal(expected)


@pytest.mark.parametrize(
    ("text", "detail"),
    [
        ("-1", "must be positive"),
        ("0", "must be positive"),
        ("NaN", "finite"),
        ("-inf", "finite"),
        ("Infinity", "finite"),
        ("1e16", "over 1e15"),
        ("1000000000000000.5", "over"),
        ("abc", "not a number"),
        ("1_000", "not a number"),
        ("0x10", "not a number"),
        ("1,5", "not a number"),
        ("\u0661", "not a number"),  # an Arabic-Indic digit: Decimal() would take it
        ("1e-99999999999", "decimal places"),
        ("0.0000000000000000001", "decimal places"),
    ],
)
def test_bad_amounts(text: str, detail: str) -> None:
    with pytest.raises(QueryError, match=detail):
        parse_amount(text)


@pytest.mark.parametrize(
    ("raw", "detail"),
    [
        (b"to=RUB", "`from` is required"),
        (b"from=BTC", "`to` is required"),
        (b"from=&to=RUB", "`from` is required"),
        (b"from=DOGE&to=RUB", "unknown asset in `from`: DOGE"),
        (b"from=BTC&to=EUR", "unknown asset in `to`: EUR"),
        (b"from=USD&to=rub", "two fiat currencies"),
        (b"from=BTC&to=btc", "the same"),
        (b"from=BTC&from=ETH&to=USD", "given twice"),
        (b"from=BTC&to=USD&amount=1&amount=2", "amount given twice"),
    ],
)
def test_bad_convert_queries(raw: bytes, detail: str) -> None:
    with pytest.raises(QueryError, match=detail):
        CONVERTS.parse(raw)


def test_convert_routes() -> None:
    direct = CONVERTS.parse(b"from=btc&to=RUB&amount=0.5")
    assert (direct.directions, direct.inverse, direct.key) == (("BTC-RUB",), False, "BTC|RUB|0.5")
    inverse = CONVERTS.parse(b"from=USD&to=usdttrc")
    assert (inverse.directions, inverse.inverse) == (("USDTTRC-USD",), True)
    cross = CONVERTS.parse(b"from=BTC&to=ETH")
    assert cross.directions == ("BTC-USD", "ETH-USD")


def _row(direction: str, value: str, source: str = "binance") -> Course:
    return Course(direction=direction, value=Decimal(value), source=source, updated_at=AT)


def test_results_carry_no_float_noise() -> None:
    # 0.1 + 0.2 in binary floats is 0.30000000000000004; in decimal it is 0.3.
    query = CONVERTS.parse(b"from=BTC&to=USD&amount=0.1")
    assert convert(query, [_row("BTC-USD", "3")]).result == Decimal("0.3")
    big = CONVERTS.parse(b"from=BTC&to=RUB&amount=1e15")
    assert convert(big, [_row("BTC-RUB", "6210842.14167191")]).result == Decimal(
        "6210842141671910000000"
    )


def test_fiat_to_crypto_divides_by_the_row() -> None:
    query = CONVERTS.parse(b"from=USD&to=BTC&amount=100")
    conversion = convert(query, [_row("BTC-USD", "3")])
    assert conversion.rate == Decimal("0.3333333333333333")  # 16 significant digits
    assert conversion.result == Decimal("33.33333333")  # 100 / 3 to 8 places, not 100 x rate
    assert (conversion.from_, conversion.to, conversion.source) == ("USD", "BTC", "binance")


def test_crypto_to_crypto_is_a_cross_through_usd_with_legs() -> None:
    query = CONVERTS.parse(b"from=BTC&to=ETH&amount=2")
    conversion = convert(
        query, [_row("BTC-USD", "60000"), _row("ETH-USD", "3000", source="coingecko")]
    )
    assert conversion.rate == Decimal(20)
    assert conversion.result == Decimal(40)
    assert conversion.source == "mixed"
    assert conversion.legs == ("binance:BTC-USD", "coingecko:ETH-USD")
