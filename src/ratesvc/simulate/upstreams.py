"""The set of simulated upstreams served by ``ratesvc simulate``."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from websockets.asyncio.server import ServerConnection, serve

from ratesvc.simulate.polygon import PolygonSimulator


class Upstreams:
    def __init__(self, *, seed: int = 1) -> None:
        self.seed = seed
        self.polygon = PolygonSimulator(seed=seed)

    def http_routes(self) -> list[Any]:
        return [*self.polygon.routes()]

    async def _ws_handler(self, connection: ServerConnection) -> None:
        await connection.close(1008, "no websocket simulator yet")

    @asynccontextmanager
    async def serve_websocket(self, host: str, port: int) -> AsyncIterator[int]:
        async with serve(self._ws_handler, host, port) as server:
            yield next(iter(server.sockets)).getsockname()[1]

    async def run(self) -> None:
        await asyncio.Event().wait()
