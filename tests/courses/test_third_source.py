"""A third exchange plugs in as one module: registered, it is an ``exchanger`` and a failover step.

The fake Kestrel exchange is a real websocket server on port 0; ratesvc's
own Binance and CoinGecko point at a port nobody listens on, and CoinGecko's
prices sit in Redis, fresh, as a lease holder would have left them.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import httpx
import msgspec
from redis.asyncio import Redis
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from ratesvc.app import create_app
from ratesvc.config import Settings
from ratesvc.courses.binance import BINANCE
from ratesvc.courses.coingecko import COINGECKO
from ratesvc.courses.plugin import CoursesPlugin
from ratesvc.embedded import free_port
from support.servers import eventually, serve_app

from .conftest import PRICES, write_prices
from .kestrel import Kestrel

KESTREL_STALE_S = 0.5
"""Far below CoinGecko's limit: a borrowed limit would show."""


class FakeKestrel:
    """Streams BTC/USD and ETH/USD every 20 ms to whoever connects; silent once paused."""

    def __init__(self) -> None:
        self.streaming = asyncio.Event()
        self.streaming.set()

    async def handler(self, ws: ServerConnection) -> None:
        with contextlib.suppress(ConnectionClosed):
            while self.streaming.is_set():
                await ws.send('{"pair":"BTC/USD","last":"67250.5"}')
                await ws.send('{"pair":"ETH/USD","last":"3470.25"}')
                await asyncio.sleep(0.02)
            await ws.recv()  # paused: send nothing until the client goes

    @contextlib.asynccontextmanager
    async def serving(self) -> AsyncIterator[str]:
        async with serve(self.handler, "127.0.0.1", 0) as server:
            port = next(iter(server.sockets)).getsockname()[1]
            yield f"ws://127.0.0.1:{port}"


def rows(response: httpx.Response) -> dict[str, Any]:
    return {row["direction"]: row for row in response.json().get("courses", [])}


async def test_a_third_source_is_an_exchanger_and_a_failover_step(
    settings: Settings, redis: Redis
) -> None:
    coingecko_only = {k: v for k, v in PRICES.items() if k.startswith("coingecko|")}
    await write_prices(redis, coingecko_only, datetime.now(UTC))
    nowhere = f"127.0.0.1:{free_port()}"
    settings = msgspec.structs.replace(
        settings,
        binance_ws_url=f"ws://{nowhere}",
        binance_rest_url=f"http://{nowhere}",
        coingecko_url=f"http://{nowhere}",
        coingecko_stale_after_s=3600.0,
    )
    fake = FakeKestrel()
    async with fake.serving() as ws_url:
        kestrel = Kestrel(ws_url, stale_after_s=KESTREL_STALE_S)
        app = create_app(settings, plugins=[CoursesPlugin([BINANCE, kestrel, COINGECKO])])
        async with serve_app(app) as base, httpx.AsyncClient(base_url=base) as client:
            own = await eventually(
                lambda: client.get("/v1/courses", params={"exchanger": "Kestrel"}),
                lambda r: r.status_code == 200 and "BTC-USD" in rows(r),
            )
            assert own.json()["exchanger"] == "kestrel"
            assert set(rows(own)) == {"BTC-USD", "ETH-USD"}  # USD only: no RUB rows
            assert rows(own)["BTC-USD"]["value"] == 67250.5

            # Failover order is the registry's: no Binance quote, so Kestrel before CoinGecko.
            default = rows(await client.get("/v1/courses"))
            assert default["BTC-USD"]["source"] == "kestrel"
            assert default["BTC-RUB"]["source"] == "coingecko"  # Kestrel does not price it

            bad = await client.get("/v1/courses", params={"exchanger": "kraken"})
            assert bad.status_code == 400
            assert bad.json()["valid"] == ["binance", "kestrel", "coingecko"]
            history = await client.get(
                "/v1/courses/history", params={"direction": "BTC-USD", "exchanger": "kestrel"}
            )
            assert history.status_code == 200
            document = (await client.get("/docs/openapi.json")).json()
            [exchanger] = [
                p
                for p in document["paths"]["/v1/courses"]["get"]["parameters"]
                if p["name"] == "exchanger"
            ]
            assert exchanger["schema"]["enum"] == ["binance", "kestrel", "coingecko", ""]

            # Its own staleness limit: quiet for longer than it, Kestrel's rows are stale
            # while CoinGecko's (an hour) are not, and the default answer fails over.
            fake.streaming.clear()
            await eventually(
                lambda: client.get("/v1/courses", params={"exchanger": "kestrel"}),
                lambda r: rows(r)["BTC-USD"].get("stale") is True,
            )
            default = rows(await client.get("/v1/courses"))
            assert default["BTC-USD"]["source"] == "coingecko"
