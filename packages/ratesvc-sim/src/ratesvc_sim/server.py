"""Run every simulator: one HTTP server (REST upstreams + control) and one websocket server."""

from __future__ import annotations

import asyncio
import json
import signal
from collections.abc import Sequence
from pathlib import Path
from types import FrameType
from typing import Any

import uvicorn
from litestar import Litestar

from ratesvc.embedded import write_atomically
from ratesvc.log import get_logger

log = get_logger("simulate")


def simulator_urls(http_base: str, ws_base: str) -> dict[str, str]:
    """The ``RATESVC_*`` settings that point ratesvc at simulators on these bases."""
    return {
        "RATESVC_BINANCE_WS_URL": ws_base,
        "RATESVC_BINANCE_REST_URL": f"{http_base}/binance",
        "RATESVC_COINGECKO_URL": f"{http_base}/coingecko/api/v3",
        "RATESVC_POLYGON_URL": f"{http_base}/polygon",
    }


def build_http_app(route_handlers: Sequence[Any]) -> Litestar:
    return Litestar(route_handlers=list(route_handlers), openapi_config=None, logging_config=None)


async def run_simulators(
    host: str, port: int, *, ready_file: str | None = None, seed: int = 1
) -> None:
    from ratesvc_sim.upstreams import Upstreams  # noqa: PLC0415

    upstreams = Upstreams(seed=seed)
    http_port = port
    ws_port = port + 1 if port else 0
    app = build_http_app(upstreams.http_routes())
    config = uvicorn.Config(
        app, host=host, port=http_port, log_config=None, access_log=False, lifespan="on"
    )
    server = uvicorn.Server(config)
    _stop_on_signals(server)
    http_task = asyncio.create_task(server.serve())
    while not server.started:
        if http_task.done():
            await http_task
            return
        await asyncio.sleep(0.01)
    bound_http = server.servers[0].sockets[0].getsockname()[1]
    async with upstreams.serve_websocket(host, ws_port) as bound_ws:
        urls = simulator_urls(f"http://{host}:{bound_http}", f"ws://{host}:{bound_ws}")
        log.info("simulators_ready", **urls)
        if ready_file:
            await asyncio.to_thread(write_atomically, Path(ready_file), json.dumps(urls))
        async with asyncio.TaskGroup() as group:
            market = group.create_task(upstreams.run())
            await http_task  # returns when uvicorn stops on SIGINT or SIGTERM
            market.cancel()


def _stop_on_signals(server: uvicorn.Server) -> None:
    """SIGINT/SIGTERM outside uvicorn's own handling (start-up, and its re-raise at exit) stop it.

    uvicorn restores the previous handlers after its graceful shutdown and then
    raises the signal again; with Python's default SIGINT handler that would end
    in a KeyboardInterrupt traceback and a non-zero exit after a clean stop.
    """

    def request_exit(_signum: int, _frame: FrameType | None) -> None:
        server.should_exit = True

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, request_exit)
