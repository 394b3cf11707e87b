"""The set of simulated upstreams served by ``ratesvc simulate``, plus their control routes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from litestar import Router, get, post
from litestar.exceptions import NotFoundException

from ratesvc_sim.binance import BinanceSimulator
from ratesvc_sim.coingecko import CoinGeckoSimulator
from ratesvc_sim.market import Market
from ratesvc_sim.polygon import PolygonSimulator


class Upstreams:
    def __init__(self, *, seed: int = 1, tick_s: float = 1.0) -> None:
        self.seed = seed
        self.tick_s = tick_s
        self.market = Market(seed)
        self.binance = BinanceSimulator(self.market, interval_s=tick_s)
        self.coingecko = CoinGeckoSimulator(self.market)
        self.polygon = PolygonSimulator(seed=seed)

    def http_routes(self) -> list[Any]:
        return [
            self.binance.routes(),
            self.coingecko.routes(),
            *self.polygon.routes(),
            self._control_routes(),
        ]

    def _control_routes(self) -> Router:
        """``POST /control/binance/silent`` and the like, for demos and out-of-process tests."""
        upstreams = self

        @post("/{upstream:str}/{mode:str}", status_code=200)
        async def set_mode(upstream: str, mode: str) -> dict[str, str]:
            if upstream == "binance" and mode == "drop":
                await upstreams.binance.drop_all()
            elif upstream == "binance" and mode == "shutdown":
                await upstreams.binance.announce_shutdown()
            elif upstream == "binance" and mode in {"normal", "silent", "refuse", "garbage"}:
                upstreams.binance.set_mode(mode)  # type: ignore[arg-type]
            elif upstream == "coingecko" and mode in {
                "normal", "rate_limited", "error", "html", "garbage", "slow",
            }:  # fmt: skip
                upstreams.coingecko.set_mode(mode)  # type: ignore[arg-type]
            else:
                raise NotFoundException(f"unknown control {upstream}/{mode}")
            return {"upstream": upstream, "mode": mode}

        @get("/state")
        async def state() -> dict[str, Any]:
            return {
                "binance": {
                    "mode": upstreams.binance.mode,
                    "connections_accepted": upstreams.binance.connections_accepted,
                },
                "coingecko": {"mode": upstreams.coingecko.mode, "calls": upstreams.coingecko.calls},
                "prices": upstreams.market.prices,
            }

        return Router(path="/control", route_handlers=[set_mode, state])

    @asynccontextmanager
    async def serve_websocket(self, host: str, port: int) -> AsyncIterator[int]:
        async with self.binance.serve(host, port) as server:
            yield next(iter(server.sockets)).getsockname()[1]

    async def run(self) -> None:
        """Move the market; both exchanges quote the same walk."""
        while True:
            await asyncio.sleep(self.tick_s)
            self.market.step()
