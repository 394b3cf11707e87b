"""Slow and silent clients of `ratesvc serve` (no proxy in front) are cut off in time."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import msgspec
import pytest

from ratesvc.config import Settings
from support.environment import store_environment
from support.serve_process import RunningServe, serve_process

pytestmark = pytest.mark.slow

HEADER_TIMEOUT_S = 2.0
CUT_BOUND_S = HEADER_TIMEOUT_S + 6.0
"""Latest a connection may still be open: the deadline plus generous slack for a busy machine."""
EARLIEST_S = HEADER_TIMEOUT_S - 0.05
"""Soonest a connection may be cut: uvloop starts timers from its loop time, cached at the
top of a loop turn, so one armed late in a busy turn (a thousand accepts) fires a little early."""
QUICK_S = 2.0
SLOW_CLIENTS = 500
SILENT_CLIENTS = 500
PARTIAL_HEAD = b"GET /v1/health HTTP/1.1\r\nHost: t\r\nX-Slow: "


class Cut(msgspec.Struct):
    open_s: float
    received: bytes


@contextmanager
def serving(settings: Settings, tmp_path: Path) -> Iterator[RunningServe]:
    environment = {
        **store_environment(settings, tmp_path / "data"),
        "RATESVC_RATE_LIMIT": "1000000/minute",
        "RATESVC_HEADER_TIMEOUT_S": str(HEADER_TIMEOUT_S),
    }
    with serve_process(environment, tmp_path / "serve.log") as running:
        yield running


async def hold(
    port: int, first: bytes, *, trickle: bool, connected: asyncio.Barrier | None = None
) -> Cut:
    """Send ``first``, then a byte every half second if ``trickle``, until the server closes.

    With ``connected``, wait there once connected (so all connections are open at once).
    """
    opened = time.monotonic()  # before the server can accept: a lower bound of its wait
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(first)
    if connected is not None:
        await connected.wait()
    received = b""
    try:
        async with asyncio.timeout(CUT_BOUND_S):
            while True:
                try:
                    async with asyncio.timeout(0.5):
                        chunk = await reader.read(4096)
                except TimeoutError:
                    if trickle:
                        writer.write(b"a")
                    continue
                if not chunk:
                    break
                received += chunk
    finally:
        writer.close()
    return Cut(time.monotonic() - opened, received)


def assert_timed_out_with_408(cut: Cut) -> None:
    assert EARLIEST_S <= cut.open_s <= CUT_BOUND_S, cut
    head, _, body = cut.received.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 408 "), cut
    assert b"content-type: application/json" in head
    assert json.loads(body)["error"] == "request_timeout"


async def test_slow_and_silent_clients_are_cut_off_while_others_are_served(
    settings: Settings, tmp_path: Path
) -> None:
    with serving(settings, tmp_path) as running:
        port = int(running.base.rsplit(":", 1)[1])
        connected = asyncio.Barrier(SLOW_CLIENTS + SILENT_CLIENTS + 1)
        slow = [
            asyncio.create_task(hold(port, PARTIAL_HEAD, trickle=True, connected=connected))
            for _ in range(SLOW_CLIENTS)
        ]
        silent = [
            asyncio.create_task(hold(port, b"", trickle=False, connected=connected))
            for _ in range(SILENT_CLIENTS)
        ]
        async with asyncio.timeout(30):
            await connected.wait()
        async with httpx.AsyncClient(base_url=running.base, timeout=5) as client:
            for _ in range(10):
                started = time.monotonic()
                health = await client.get("/v1/health")
                stats = await client.get("/v1/stats/login")
                assert (health.status_code, stats.status_code) == (200, 200)
                # Served, not queued behind the held connections (generous: a busy machine).
                assert time.monotonic() - started < QUICK_S
        for cut in await asyncio.gather(*slow):
            assert_timed_out_with_408(cut)
        for cut in await asyncio.gather(*silent):
            # Nothing asked, nothing answered: the connection is just closed.
            assert EARLIEST_S <= cut.open_s <= CUT_BOUND_S, cut
            assert cut.received == b""
        async with httpx.AsyncClient(base_url=running.base) as client:
            metrics = (await client.get("/metrics")).text
        assert f"ratesvc_header_timeout_requests_cut_total {float(SLOW_CLIENTS)}" in metrics
        assert f"ratesvc_header_timeout_idle_closed_total {float(SILENT_CLIENTS)}" in metrics


async def test_the_deadline_applies_to_each_request_on_a_connection(
    settings: Settings, tmp_path: Path
) -> None:
    with serving(settings, tmp_path) as running:
        port = int(running.base.rsplit(":", 1)[1])
        # A full request first, then the next one trickled: cut like a first one.
        cut = await hold(
            port, b"GET /v1/health HTTP/1.1\r\nHost: t\r\n\r\n" + PARTIAL_HEAD, trickle=True
        )
        first, _, rest = cut.received.partition(b"\r\n\r\n")
        assert first.startswith(b"HTTP/1.1 200 "), cut
        assert_timed_out_with_408(Cut(cut.open_s, rest.partition(b'{"status":"ok"}')[2]))


async def test_a_slow_body_after_complete_headers_is_not_cut(
    settings: Settings, tmp_path: Path
) -> None:
    with serving(settings, tmp_path) as running:
        port = int(running.base.rsplit(":", 1)[1])
        body = b'{"user_id":1,"event_type":"slow-body","timestamp":1700000000}'
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            writer.write(
                b"POST /v1/events HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
                b"Content-Length: %d\r\n\r\n" % len(body)
            )
            started = time.monotonic()
            for piece in (body[:20], body[20:40], body[40:]):  # over more than the deadline
                writer.write(piece)
                await writer.drain()
                await asyncio.sleep(HEADER_TIMEOUT_S / 2)
            async with asyncio.timeout(10):
                head = await reader.readuntil(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 202 "), head
            assert time.monotonic() - started > HEADER_TIMEOUT_S
        finally:
            writer.close()
