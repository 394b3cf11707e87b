"""A ratesvc app in the test's own event loop, called without a socket.

``app_client(app)`` runs the app's real lifespan (``Litestar.lifespan()``, what
uvicorn's lifespan events enter) against the real stores and simulators, and
yields an ``httpx.AsyncClient`` whose transport calls the ASGI app directly.
Concurrent requests stay concurrent and the app shares the loop with the test's
fixtures, which ``litestar.testing.AsyncTestClient`` does not offer: it runs the
app on a second loop in a thread and blocks the test's loop for every request,
so a simulator served from the test's loop could never answer the app.

What needs a real socket (streamed answers, slow clients, header timeouts,
signals, several processes) keeps ``support.servers.serve_app``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from litestar import Litestar

BASE_URL = "http://ratesvc.test"
CLIENT_ADDRESS = ("127.0.0.1", 50000)
"""The peer the app sees: the loopback address a local client would have."""
LIFESPAN_TIMEOUT_S = 30.0


@asynccontextmanager
async def running(app: Litestar) -> AsyncIterator[None]:
    """``app``'s lifespan, entered and left in a task of its own, as a server does.

    The lifespan holds anyio task groups, which must be left by the task that
    entered them; a module fixture's set-up and tear-down run in different tasks.
    """
    started = asyncio.Event()
    stop = asyncio.Event()

    async def lifespan() -> None:
        async with app.lifespan():
            started.set()
            await stop.wait()

    task = asyncio.create_task(lifespan(), name="app-lifespan")
    try:
        async with asyncio.timeout(LIFESPAN_TIMEOUT_S):
            ready = asyncio.create_task(started.wait())
            await asyncio.wait([task, ready], return_when=asyncio.FIRST_COMPLETED)
            ready.cancel()
            if task.done():
                await task  # start-up failed: its exception, here
                raise RuntimeError("the app's lifespan ended during start-up")
        yield
    finally:
        stop.set()
        async with asyncio.timeout(LIFESPAN_TIMEOUT_S):
            await task


@asynccontextmanager
async def app_client(app: Litestar, timeout_s: float = 30) -> AsyncIterator[httpx.AsyncClient]:
    """Start ``app``; yield a client calling it in-process; stop the app at the end."""
    # Litestar's __call__ declares its own TypedDict scopes, httpx a plain mapping.
    transport = httpx.ASGITransport(app=app, client=CLIENT_ADDRESS)  # type: ignore[arg-type]
    async with (
        running(app),
        httpx.AsyncClient(transport=transport, base_url=BASE_URL, timeout=timeout_s) as client,
    ):
        yield client
