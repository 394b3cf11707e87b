"""One websocket to an exchange, kept open forever: the reconnect loop every streaming source shares.

The source supplies the URL and what to do with each frame; this loop owns
the rest.  A connection silent for ``silence_s`` counts as dead (the
watchdog is a timeout around each ``recv()``, no extra task).  Drops,
refusals and silence reconnect after a capped, jittered backoff that resets
once a connection lived ``HEALTHY_AFTER_S``.  A frame handler that raises
``ReconnectNow`` (an exchange announcing it goes away) gets a prompt
reconnect, unless the server flaps: then the backoff applies, so attempts
never come faster than the capped delay allows.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from typing import Any

from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI

from ratesvc.retry import backoff_delays

HEALTHY_AFTER_S = 60.0
"""A connection that lived this long resets the reconnect backoff."""
MAX_FRAME_BYTES = 1 << 20


class ReconnectNow(Exception):  # noqa: N818 - a request, not an error
    """Raised by a frame handler: the exchange asked for a reconnect."""


async def stream_forever(
    url: str,
    on_frame: Callable[[str | bytes], None],
    *,
    log: Any,
    silence_s: float,
    reconnect_min_s: float,
    reconnect_max_s: float,
    jitter: float = 0.5,
    connected: Callable[[], None] = lambda: None,
) -> None:
    """Receive frames from ``url`` forever, handing each to ``on_frame``; never returns."""

    def fresh_delays() -> Iterator[float]:
        return backoff_delays(reconnect_min_s, reconnect_max_s, jitter=jitter)

    delays = fresh_delays()
    while True:
        connected_at: float | None = None
        immediate = False
        try:
            # websockets answers the server's pings itself (echoing the payload).
            async with connect(
                url, open_timeout=10, close_timeout=2, max_size=MAX_FRAME_BYTES
            ) as ws:
                connected_at = time.monotonic()
                connected()
                while True:
                    async with asyncio.timeout(silence_s):
                        raw = await ws.recv()
                    on_frame(raw)
        except ReconnectNow:
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
            continue
        delay = next(delays)
        log.warning("ws_reconnecting", delay_s=round(delay, 3))
        await asyncio.sleep(delay)
