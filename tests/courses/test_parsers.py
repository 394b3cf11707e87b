from datetime import UTC, datetime
from decimal import Decimal

import pytest

from ratesvc.courses.binance import ServerShutdownError, parse_frame, parse_price, stream_url
from ratesvc.courses.coingecko import parse_simple_price, retry_after_s

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)


def test_mini_ticker_frame_becomes_a_quote_stamped_on_receipt() -> None:
    frame = (
        '{"stream":"btcusdt@miniTicker","data":{"e":"24hrMiniTicker","E":1672515782136,'
        '"s":"BTCUSDT","c":"25.35190000","o":"0.0010","h":"0.0025","l":"0.0010",'
        '"v":"10000","q":"18"}}'
    )
    quote = parse_frame(frame, NOW)
    assert quote is not None
    assert (quote.source, quote.market, quote.value) == ("binance", "BTCUSDT", Decimal("25.3519"))
    assert quote.observed_at == NOW


def test_server_shutdown_is_signalled() -> None:
    with pytest.raises(ServerShutdownError):
        parse_frame(
            '{"stream":"!serverShutdown","data":{"e":"serverShutdown","E":1770123456789}}', NOW
        )


@pytest.mark.parametrize(
    "frame",
    [
        '{"result":null,"id":1}',
        '{"stream":"x","data":{"e":"24hrMiniTicker","E":1,"s":"BTCUSDT","c":"NaN"}}',
        '{"stream":"x","data":{"e":"24hrMiniTicker","E":1,"s":"BTCUSDT","c":"-1"}}',
        '{"stream":"x","data":{"e":"24hrMiniTicker","E":1,"s":"BTCUSDT","c":"0"}}',
        '{"stream":"x","data":{"e":"trade","E":1}}',
        b"\x00\xff",
        '{"stream": "btcusdt@miniTicker", "data": {"e": ',
    ],
)
def test_frames_without_a_valid_price_are_skipped(frame: str | bytes) -> None:
    assert parse_frame(frame, NOW) is None


def test_price_must_be_finite_and_positive() -> None:
    assert parse_price("1e3") == Decimal("1e3")
    assert parse_price("Infinity") is None
    assert parse_price("abc") is None


def test_stream_url_combines_lowercase_streams() -> None:
    url = stream_url("wss://stream.binance.com:9443/", ["BTCUSDT", "ETHUSDT"])
    assert (
        url == "wss://stream.binance.com:9443/stream?streams=btcusdt@miniTicker/ethusdt@miniTicker"
    )


def test_simple_price_body_becomes_quotes() -> None:
    body = (
        b'{"bitcoin":{"usd":67187.3358936566,"rub":6200000.5,"usd_24h_change":null,'
        b'"last_updated_at":1711356300},"tether":{"usd":1.0001,"rub":0}}'
    )
    quotes = {q.market: q.value for q in parse_simple_price(body, NOW)}
    assert quotes == {
        "bitcoin/usd": Decimal("67187.3358936566"),
        "bitcoin/rub": Decimal("6200000.5"),
        "tether/usd": Decimal("1.0001"),
    }


@pytest.mark.parametrize(
    "body", [b"<!DOCTYPE html><html>Error 1015</html>", b'{"bitcoin":{"usd":"lots"}}', b"[1,2]"]
)
def test_simple_price_rejects_other_shapes(body: bytes) -> None:
    with pytest.raises(ValueError, match="simple/price"):
        parse_simple_price(body, NOW)


def test_retry_after_accepts_seconds_and_dates() -> None:
    assert retry_after_s("119", 60) == 119
    assert retry_after_s(None, 60) == 60
    assert retry_after_s("soon", 60) == 60
    assert retry_after_s("Wed, 21 Oct 2015 07:28:00 GMT", 60) == 0
