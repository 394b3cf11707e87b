"""uvicorn's httptools protocol with a deadline for each request's headers.

uvicorn has no timeout for receiving a request: its keep-alive timeout runs
only between requests, is not armed before the first one, and is cancelled by
any byte received.  A client that opens a connection and sends nothing, or
trickles its headers a byte a second, holds the connection (and a file
descriptor) for ever; a few thousand of them exhaust the process's descriptors
and nobody else can connect.  (uvicorn's issue #157 lists the missing
``--timeout-request-start``.)  nginx, when it is in front, enforces
``client_header_timeout``; this gives the single-container deploy the same.

Whenever a connection waits for a request - from the moment it is accepted,
and again after each response - the request's headers must be complete within
``RATESVC_HEADER_TIMEOUT_S``.  Otherwise the connection is closed: with a JSON
408 if part of a request had arrived, silently if nothing had (a browser's
pre-opened connection gets no answer to a request it never made).  After a
408 the server half-closes and reads on, discarding, until the client closes
(at most ``LINGER_S``), as RFC 9112 section 9.6 advises: closing outright
while the client's bytes are still arriving makes the kernel reset the
connection, and the reset can destroy the 408 before the client reads it.  Once the
headers are in, the deadline is off: bodies and slow answers (the SSE stream)
are not cut.  uvicorn's keep-alive timeout still closes an idle connection
between requests sooner.

``ratesvc serve`` passes this class as uvicorn's ``http`` protocol.  Worker
processes import it afresh, so the timeout is read from the environment's
settings, like the app's.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Iterator
from typing import Any

import msgspec
from prometheus_client.core import CounterMetricFamily
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from ratesvc.api.errors import error_code
from ratesvc.api.metrics import counter_families
from ratesvc.config import load_settings


class HeaderTimeouts:
    """Connections this process closed at the deadline (the app shows them in /metrics)."""

    def __init__(self) -> None:
        self.requests_cut = 0
        self.idle_closed = 0

    def collect(self) -> Iterator[CounterMetricFamily]:
        """Prometheus families (a ``metric_sources`` entry)."""
        return counter_families(
            "ratesvc_header_timeout",
            [
                ("requests_cut", "Connections closed with a 408: headers incomplete at the deadline", self.requests_cut),
                ("idle_closed", "Connections closed having sent nothing by the deadline", self.idle_closed),
            ],
        )  # fmt: skip


HEADER_TIMEOUTS = HeaderTimeouts()
LINGER_S = 2.0
"""How long a connection cut with a 408 is read (and discarded) while the client closes."""


@functools.cache
def header_timeout_s() -> float:
    return load_settings().header_timeout_s


class HeaderTimeoutProtocol(HttpToolsProtocol):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._header_deadline: asyncio.TimerHandle | None = None
        self._request_started = False
        """Some bytes of the awaited request arrived (a 408 is owed if it times out)."""
        self._lingering = False
        """The 408 is sent and the connection half-closed: what still arrives is dropped."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._await_headers()

    def connection_lost(self, exc: Exception | None) -> None:
        self._headers_done()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._lingering:
            return
        if self._header_deadline is not None:
            self._request_started = True
        super().data_received(data)

    def on_headers_complete(self) -> None:
        self._headers_done()
        super().on_headers_complete()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        # Waiting for the next request, unless a pipelined one is complete and queued.
        if not self.transport.is_closing() and self.cycle.response_complete:
            self._await_headers()

    def _await_headers(self) -> None:
        self._headers_done()
        self._request_started = False
        self._header_deadline = self.loop.call_later(header_timeout_s(), self._headers_late)

    def _headers_done(self) -> None:
        if self._header_deadline is not None:
            self._header_deadline.cancel()
            self._header_deadline = None

    def _headers_late(self) -> None:
        self._header_deadline = None
        if self.transport.is_closing():
            return
        if self._request_started:
            HEADER_TIMEOUTS.requests_cut += 1
            self.transport.write(_REQUEST_TIMEOUT)
            if self.transport.can_write_eof():
                # The 408, then FIN; the client's EOF closes the transport (eof_received).
                self._lingering = True
                self.transport.write_eof()
                self.loop.call_later(LINGER_S, self.transport.close)
                return
        else:
            HEADER_TIMEOUTS.idle_closed += 1
        self.transport.close()


def _request_timeout_response() -> bytes:
    body = msgspec.json.encode(
        {"error": error_code(408), "detail": "request headers not received in time"}
    )
    return (
        b"HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\n"
        b"content-length: %d\r\nconnection: close\r\n\r\n%s" % (len(body), body)
    )


_REQUEST_TIMEOUT = _request_timeout_response()
