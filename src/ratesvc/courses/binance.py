"""Binance market stream: one websocket for every symbol, miniTicker frames -> quotes.

Why ``@miniTicker``: it carries the last price (``c``) once a second per symbol,
which is the freshness the service promises, at a small fraction of the traffic
of ``@trade``/``@aggTrade`` (hundreds of frames a second on BTCUSDT) or
``@bookTicker`` (every best bid/ask change), and with less than ``@ticker``'s
two dozen fields.

Freshness is stamped with the local receive time: the stream is real-time, and
the exchange's event time would make a skewed clock look like an outage.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation

import httpx
import msgspec

from ratesvc.config import Settings
from ratesvc.courses.directions import USD_RUB_LEGS, Direction, binance_symbols, entry_of_symbol
from ratesvc.courses.sources import Offer, Priced
from ratesvc.courses.websocket import ReconnectNow, stream_forever
from ratesvc.log import get_logger
from ratesvc.models import Quote, is_valid_price

log = get_logger("courses.binance", upstream="binance")

NAME = "binance"
RECONNECT_JITTER = 0.2
"""Reconnect delays stay within 80-100% of their ceiling.

Only the lease holder connects, so there is no herd of clients to spread out,
and a high floor bounds the attempt rate: with the default 3 s cap
(``RATESVC_BINANCE_RECONNECT_MAX_S``) attempts are at least 2.4 s apart, at
most 125 in 5 minutes against Binance's limit of 300 connection attempts per
5 minutes per IP (web-socket-streams.md, "WebSocket Limits").  The low cap is
what brings prices back within a few seconds of Binance accepting connections
again, however long the outage was; CoinGecko covers the gap meanwhile.
"""
MAX_STREAMS_PER_CONNECTION = 1024
INVALID_SYMBOL = -1121
"""Binance's error code for a symbol it does not list."""


class BinanceMiniTicker(msgspec.Struct, tag_field="e", tag="24hrMiniTicker"):
    """``{"e":"24hrMiniTicker","E":1672515782136,"s":"BNBBTC","c":"0.0025",...}``"""

    E: int
    s: str
    c: str


class BinanceServerShutdown(msgspec.Struct, tag_field="e", tag="serverShutdown"):
    """``{"e":"serverShutdown","E":1770123456789}``: reconnect at once."""

    E: int = 0


class BinanceCombined(msgspec.Struct):
    """The combined-stream wrapper ``{"stream": "btcusdt@miniTicker", "data": {...}}``."""

    stream: str
    data: BinanceMiniTicker | BinanceServerShutdown


_decode_frame = msgspec.json.Decoder(BinanceCombined).decode


class ServerShutdownError(ReconnectNow):
    """Binance announced it is going away."""


def parse_price(text: str) -> Decimal | None:
    """A positive, finite, plausible price, or None (NaN, infinity, zero, negative, absurd)."""
    try:
        value = Decimal(text)
    except (InvalidOperation, TypeError, ValueError):
        return None
    return value if is_valid_price(value) else None


def parse_frame(raw: str | bytes, received_at: datetime) -> Quote | None:
    """One websocket frame -> a quote, None for frames that carry none.

    Raises ServerShutdownError for ``serverShutdown``.  Malformed frames are
    logged and skipped: one bad frame never kills the stream.
    """
    try:
        frame = _decode_frame(raw)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        log.debug("frame_skipped", reason=str(exc), frame=_preview(raw))
        return None
    if isinstance(frame.data, BinanceServerShutdown):
        raise ServerShutdownError
    price = parse_price(frame.data.c)
    if price is None:
        log.warning("price_rejected", symbol=frame.data.s, price=frame.data.c[:40])
        return None
    return Quote(source=NAME, market=frame.data.s, value=price, observed_at=received_at)


def stream_url(base: str, symbols: list[str]) -> str:
    if len(symbols) > MAX_STREAMS_PER_CONNECTION:
        raise ValueError("more symbols than one Binance connection may carry")
    streams = "/".join(f"{s.lower()}@miniTicker" for s in symbols)
    return f"{base.rstrip('/')}/stream?streams={streams}"


async def trading_symbols(http: httpx.AsyncClient, rest_url: str, symbols: list[str]) -> list[str]:
    """Symbols whose status is TRADING (REST exchangeInfo); all of them if the check fails.

    Binance refuses the whole list (400, code -1121) when one symbol does not
    exist, so then each symbol is asked about on its own: a configured typo
    drops that one symbol, not the check.  Each symbol dropped gets one
    WARNING, naming the ``RATESVC_EXTRA_ASSETS`` entry that asked for it.
    """
    url = f"{rest_url.rstrip('/')}/api/v3/exchangeInfo"
    try:
        listed = await _statuses(http, url, {"symbols": json.dumps(symbols, separators=(",", ":"))})
        if listed is None:
            listed = {}
            for symbol in symbols:
                listed.update(await _statuses(http, url, {"symbol": symbol}) or {})
    except (httpx.HTTPError, ValueError, KeyError, TypeError, AttributeError) as exc:
        # The stream itself will show whether data comes; don't block on REST trouble.
        log.warning("exchange_info_unavailable", error=repr(exc))
        return symbols
    trading = [s for s in symbols if listed.get(s) == "TRADING"]
    for symbol in sorted(set(symbols) - set(trading)):
        status = listed.get(symbol, "not listed")
        entry = entry_of_symbol(symbol)
        if entry is None:
            log.warning("symbol_not_trading", symbol=symbol, status=status)
        else:
            log.warning("symbol_not_trading", symbol=symbol, status=status, entry=entry)
    return trading


async def _statuses(
    http: httpx.AsyncClient, url: str, params: dict[str, str]
) -> dict[str, str] | None:
    """``symbol -> status`` from one exchangeInfo call; None when Binance says invalid symbol."""
    response = await http.get(url, params=params, timeout=10)
    if response.status_code == 400 and response.json().get("code") == INVALID_SYMBOL:
        return None
    response.raise_for_status()
    return {s["symbol"]: s.get("status") for s in response.json().get("symbols", [])}


def _preview(raw: str | bytes) -> str:
    text = raw if isinstance(raw, str) else raw[:200].decode("utf-8", "replace")
    return text[:200]


async def run_binance(
    *,
    ws_url: str,
    rest_url: str,
    http: httpx.AsyncClient,
    symbols: list[str],
    offer: Offer,
    silence_s: float,
    reconnect_min_s: float,
    reconnect_max_s: float,
) -> None:
    """Stream quotes forever: reconnect on silence, drops, errors and serverShutdown."""
    symbols = await trading_symbols(http, rest_url, symbols)
    if not symbols:
        log.error("no_trading_symbols")
        await asyncio.Event().wait()

    def on_frame(raw: str | bytes) -> None:
        quote = parse_frame(raw, datetime.now(UTC))
        if quote is not None:
            log.debug("quote", market=quote.market, value=str(quote.value))
            offer(quote)

    # Its own keepalive pings (websockets') stay well inside Binance's 5 messages/s.
    await stream_forever(
        stream_url(ws_url, symbols),
        on_frame,
        log=log,
        silence_s=silence_s,
        reconnect_min_s=reconnect_min_s,
        reconnect_max_s=reconnect_max_s,
        jitter=RECONNECT_JITTER,
        connected=lambda: log.info("ws_connected", streams=len(symbols)),
    )


class Binance:
    """The Binance source: X/USDT markets (USDT taken as USD); the quirks are directions.py's."""

    name = NAME

    def stale_after_s(self, settings: Settings) -> float:
        return settings.stale_after_s

    def markets(self, direction: Direction) -> tuple[str, ...]:
        market = f"{NAME}|{direction.binance_symbol}"
        if direction.quote == "RUB":
            return (market, *(f"coingecko|{leg}" for leg in USD_RUB_LEGS))
        return (market,)

    def price(self, direction: Direction, quotes: Mapping[str, Quote]) -> Priced | None:
        market = quotes.get(f"{NAME}|{direction.binance_symbol}")
        if market is None:
            return None
        try:
            usd = Decimal(1) / market.value if direction.binance_invert else market.value
        except (InvalidOperation, ZeroDivisionError):
            return None
        leg = f"{NAME}:{direction.binance_symbol}"
        if direction.quote != "RUB":
            return Priced(usd, (market,), (leg,) if direction.binance_invert else None)
        # No RUB markets on Binance: a cross rate through CoinGecko's USD-RUB.
        rub, usd_leg = (quotes.get(f"coingecko|{m}") for m in USD_RUB_LEGS)
        if rub is None or usd_leg is None:
            return None
        return Priced(
            usd * rub.value / usd_leg.value,
            (market, rub, usd_leg),
            (leg, *(f"coingecko:{m}" for m in USD_RUB_LEGS)),
        )

    async def run(self, settings: Settings, http: httpx.AsyncClient, offer: Offer) -> None:
        await run_binance(
            ws_url=settings.binance_ws_url,
            rest_url=settings.binance_rest_url,
            http=http,
            symbols=binance_symbols(),
            offer=offer,
            silence_s=settings.binance_silence_s,
            reconnect_min_s=settings.binance_reconnect_min_s,
            reconnect_max_s=settings.binance_reconnect_max_s,
        )


BINANCE = Binance()
