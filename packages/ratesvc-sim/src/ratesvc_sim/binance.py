"""Binance Spot market-stream simulator: the real URL forms, payloads and control messages.

Serves ``/stream?streams=a/b`` (combined frames ``{"stream": .., "data": ..}``) and
``/ws/<stream>`` (bare payloads), answers SUBSCRIBE / UNSUBSCRIBE /
LIST_SUBSCRIPTIONS, pings every 20 s like the real server, and can be told
to go silent, drop connections, refuse handshakes, send garbage or announce
``serverShutdown``.  Also serves REST ``/api/v3/exchangeInfo`` and ``/api/v3/ticker/price``.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from typing import Any, Literal
from urllib.parse import parse_qs, urlsplit

from litestar import Response, Router, get
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request as WsRequest
from websockets.http11 import Response as WsResponse

from ratesvc_sim.market import Market

Mode = Literal["normal", "silent", "refuse", "garbage"]
STREAM_TYPES = ("miniTicker", "ticker", "bookTicker", "trade", "aggTrade")


class _Client:
    def __init__(self, connection: ServerConnection, streams: list[str], combined: bool) -> None:
        self.connection = connection
        self.streams = streams
        self.combined = combined


class BinanceSimulator:
    def __init__(self, market: Market, *, interval_s: float = 1.0) -> None:
        self.market = market
        self.interval_s = interval_s
        self.mode: Mode = "normal"
        self.connections_accepted = 0
        self.handshakes_refused = 0
        self.delisted: set[str] = set()
        self._clients: set[_Client] = set()

    # --- control -----------------------------------------------------------
    def set_mode(self, mode: Mode) -> None:
        self.mode = mode

    async def drop_all(self) -> None:
        """Close every client connection abruptly, as a network failure would."""
        for client in list(self._clients):
            client.connection.transport.abort()

    async def announce_shutdown(self) -> None:
        payload = {"e": "serverShutdown", "E": _now_ms()}
        for client in list(self._clients):
            frame = {"stream": "!serverShutdown", "data": payload} if client.combined else payload
            with suppress(ConnectionClosed):
                await client.connection.send(json.dumps(frame))

    # --- websocket ---------------------------------------------------------
    def _process_request(self, _connection: ServerConnection, request: WsRequest) -> Any:
        if self.mode == "refuse":
            self.handshakes_refused += 1
            return WsResponse(503, "Service Unavailable", _headers(), b"")
        path = urlsplit(request.path)
        if not (path.path == "/stream" or path.path.startswith("/ws")):
            return WsResponse(404, "Not Found", _headers(), b"")
        return None

    async def handle(self, connection: ServerConnection) -> None:
        assert connection.request is not None
        url = urlsplit(connection.request.path)
        if url.path == "/stream":
            streams = [s for s in parse_qs(url.query).get("streams", [""])[0].split("/") if s]
            combined = True
        else:
            tail = url.path.removeprefix("/ws").strip("/")
            streams = [tail] if tail else []
            combined = False
        client = _Client(connection, streams, combined)
        self._clients.add(client)
        self.connections_accepted += 1
        try:
            async with asyncio.TaskGroup() as group:
                group.create_task(self._push(client))
                group.create_task(self._control(client))
        except* ConnectionClosed:
            pass
        finally:
            self._clients.discard(client)

    async def _control(self, client: _Client) -> None:
        async for raw in client.connection:
            try:
                request = json.loads(raw)
                method, request_id = request["method"], request.get("id")
            except (ValueError, KeyError, TypeError):
                await client.connection.send(
                    json.dumps(
                        {"code": 3, "msg": "Invalid JSON: expected value at line 1 column 1"}
                    )
                )
                continue
            params = request.get("params") or []
            if method == "SUBSCRIBE":
                client.streams.extend(p for p in params if p not in client.streams)
                result: Any = None
            elif method == "UNSUBSCRIBE":
                client.streams[:] = [s for s in client.streams if s not in params]
                result = None
            elif method == "LIST_SUBSCRIPTIONS":
                result = list(client.streams)
            else:
                await client.connection.send(
                    json.dumps(
                        {
                            "code": 2,
                            "msg": f"Invalid request: unknown variant {method}",
                            "id": request_id,
                        }
                    )
                )
                continue
            await client.connection.send(json.dumps({"result": result, "id": request_id}))

    async def _push(self, client: _Client) -> None:
        while True:
            await asyncio.sleep(self.interval_s)
            if self.mode == "silent":
                continue
            if self.mode == "garbage":
                await client.connection.send('{"stream": "btcusdt@miniTicker", "data": {"e": ')
                await client.connection.send(b"\x00\xff not json")
                await client.connection.send(
                    '{"stream":"x","data":{"e":"24hrMiniTicker","s":"BTCUSDT","c":"NaN","E":1}}'
                )
                continue
            for stream in list(client.streams):
                payload = self._payload(stream)
                if payload is None:
                    continue
                frame = {"stream": stream, "data": payload} if client.combined else payload
                await client.connection.send(json.dumps(frame, separators=(",", ":")))

    def _payload(self, stream: str) -> dict[str, Any] | None:
        symbol, _, kind = stream.partition("@")
        price = self.market.binance_price(symbol)
        if price is None or symbol.upper() in self.delisted or kind not in STREAM_TYPES:
            return None
        now = _now_ms()
        upper = symbol.upper()
        if kind == "miniTicker":
            return {"e": "24hrMiniTicker", "E": now, "s": upper, "c": price, "o": price,
                    "h": price, "l": price, "v": "1000.00000000", "q": "1000000.00000000"}  # fmt: skip
        if kind == "ticker":
            return {"e": "24hrTicker", "E": now, "s": upper, "p": "0.0", "P": "0.00", "w": price,
                    "x": price, "c": price, "Q": "0.1", "b": price, "B": "1", "a": price, "A": "1",
                    "o": price, "h": price, "l": price, "v": "1000", "q": "1000000",
                    "O": now - 86_400_000, "C": now, "F": 0, "L": 100, "n": 101}  # fmt: skip
        if kind == "bookTicker":
            return {"u": now, "s": upper, "b": price, "B": "1.0", "a": price, "A": "1.0"}
        kind_key = "t" if kind == "trade" else "a"
        return {"e": kind, "E": now, "s": upper, kind_key: now, "p": price, "q": "0.01",
                "T": now, "m": False, "M": True}  # fmt: skip

    @asynccontextmanager
    async def serve(self, host: str, port: int) -> AsyncIterator[Server]:
        async with serve(
            self.handle,
            host,
            port,
            process_request=self._process_request,
            ping_interval=20,
            ping_timeout=60,
        ) as server:
            yield server

    # --- REST --------------------------------------------------------------
    def routes(self) -> Router:
        simulator = self

        @get("/api/v3/exchangeInfo", sync_to_thread=False)
        def exchange_info(symbols: str | None = None, symbol: str | None = None) -> Response[Any]:
            wanted = _symbols_param(symbols) if symbols else [symbol] if symbol else []
            known = [s for s in wanted if simulator.market.binance_price(s) is not None]
            if len(known) < len(wanted):  # as Binance: one unknown symbol fails the whole call
                return Response({"code": -1121, "msg": "Invalid symbol."}, status_code=400)
            entries = [
                {"symbol": s, "status": "BREAK" if s in simulator.delisted else "TRADING",
                 "baseAsset": s[:-4], "quoteAsset": s[-4:]}
                for s in (known or list(simulator.market.prices))
            ]  # fmt: skip
            return Response({"timezone": "UTC", "serverTime": _now_ms(), "symbols": entries})

        @get("/api/v3/ticker/price", sync_to_thread=False)
        def ticker_price(symbols: str | None = None, symbol: str | None = None) -> Response[Any]:
            if symbol:
                price = simulator.market.binance_price(symbol)
                if price is None:
                    return Response({"code": -1121, "msg": "Invalid symbol."}, status_code=400)
                return Response({"symbol": symbol, "price": price})
            wanted = _symbols_param(symbols) if symbols else list(simulator.market.prices)
            return Response(
                [{"symbol": s, "price": simulator.market.binance_price(s)} for s in wanted
                 if simulator.market.binance_price(s) is not None]
            )  # fmt: skip

        return Router(path="/binance", route_handlers=[exchange_info, ticker_price])


def _symbols_param(raw: str) -> list[str]:
    try:
        parsed = json.loads(raw)
    except ValueError:
        return []
    return [str(s) for s in parsed] if isinstance(parsed, list) else []


def _headers() -> Any:
    from websockets.datastructures import Headers  # noqa: PLC0415

    return Headers([("Content-Length", "0")])


def _now_ms() -> int:
    return int(time.time() * 1000)
