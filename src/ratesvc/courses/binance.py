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
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation

import httpx
import msgspec
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI

from ratesvc.courses.directions import entry_of_symbol
from ratesvc.log import get_logger
from ratesvc.models import Quote, is_valid_price
from ratesvc.supervisor import backoff_delays

log = get_logger("courses.binance", upstream="binance")

HEALTHY_AFTER_S = 60.0
"""A connection that lived this long resets the reconnect backoff."""
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


class ServerShutdownError(Exception):
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
    return Quote(source="binance", market=frame.data.s, value=price, observed_at=received_at)


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
    offer: Callable[[Quote], object],
    silence_s: float,
    reconnect_min_s: float,
    reconnect_max_s: float,
) -> None:
    """Stream quotes forever: reconnect on silence, drops, errors and serverShutdown."""
    symbols = await trading_symbols(http, rest_url, symbols)
    if not symbols:
        log.error("no_trading_symbols")
        await asyncio.Event().wait()
    url = stream_url(ws_url, symbols)

    def fresh_delays() -> Iterator[float]:
        return backoff_delays(reconnect_min_s, reconnect_max_s, jitter=RECONNECT_JITTER)

    delays = fresh_delays()
    while True:
        connected_at: float | None = None
        immediate = False
        try:
            # websockets answers the server's pings itself (echoing the payload);
            # its own keepalive pings stay well inside Binance's 5 messages/s.
            async with connect(url, open_timeout=10, close_timeout=2, max_size=1 << 20) as ws:
                connected_at = time.monotonic()
                log.info("ws_connected", streams=len(symbols))
                while True:
                    async with asyncio.timeout(silence_s):
                        raw = await ws.recv()
                    quote = parse_frame(raw, datetime.now(UTC))
                    if quote is not None:
                        log.debug("quote", market=quote.market, value=str(quote.value))
                        offer(quote)
        except ServerShutdownError:
            log.info("ws_server_shutdown")
            immediate = True
        except TimeoutError:
            log.warning("ws_silent", silence_s=silence_s)
        except (ConnectionClosed, InvalidHandshake, InvalidURI, OSError) as exc:
            log.warning("ws_disconnected", error=repr(exc))
        lived_s = 0.0 if connected_at is None else time.monotonic() - connected_at
        if lived_s >= HEALTHY_AFTER_S:
            delays = fresh_delays()
        if immediate and lived_s >= reconnect_max_s:
            # Binance asks for a prompt reconnect; a server that flaps gets backoff, so
            # attempts never come faster than the capped delay allows.
            continue
        delay = next(delays)
        log.warning("ws_reconnecting", delay_s=round(delay, 3))
        await asyncio.sleep(delay)
