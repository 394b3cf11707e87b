"""Answers as plain data, and the two ways of sending one: raw ASGI or through Litestar.

A hot route computes a ``Reply`` (status, headers, body) from the raw request
in one function.  ``answered_by`` makes that function the route's raw ASGI
layer: it answers every request before Litestar builds a ``Request``, resolves
parameters and encodes a ``Response`` (about three times the requests/s of a
plain handler).  ``to_asgi_response`` lets the documented ``@get`` handler
return the same reply through Litestar; a test asserts the two agree byte for
byte.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import msgspec
from litestar.response.base import ASGIResponse
from litestar.types import (
    ASGIApp,
    HTTPResponseBodyEvent,
    HTTPResponseStartEvent,
    Receive,
    Scope,
    Send,
)

from ratesvc.api.errors import error_code

Headers = list[tuple[bytes, bytes]]
JSON = (b"content-type", b"application/json")
NO_STORE = (b"cache-control", b"no-store")
RETRY_AFTER_1 = (b"retry-after", b"1")

_encode = msgspec.json.Encoder(decimal_format="number").encode


@dataclass(frozen=True, slots=True)
class Reply:
    """One complete answer, ready to send."""

    status: int
    headers: Headers
    """Every header ratesvc sets, content-type and content-length included."""
    body: bytes = b""


ScopeAnswer = Callable[[Scope], Awaitable[Reply]]
"""A route's answer function: the raw ASGI scope (query string, headers, app) -> Reply."""
BodyAnswer = Callable[[Scope, Receive], Awaitable[Reply]]
"""The answer function of a route that reads the request body from ``receive``."""


def json_reply(status: int, body: bytes, *extra: tuple[bytes, bytes]) -> Reply:
    return Reply(status, [JSON, (b"content-length", str(len(body)).encode()), *extra], body)


def json_error(
    status: int, detail: str, *extra_headers: tuple[bytes, bytes], **fields: Any
) -> Reply:
    """The JSON error shape of ``api/errors.py``, ``{"error", "detail", ...}``, not to be cached."""
    body = _encode({"error": error_code(status), "detail": detail, **fields})
    return json_reply(status, body, NO_STORE, *extra_headers)


def unavailable(detail: str, **fields: Any) -> Reply:
    """503 with ``Retry-After: 1``: the client may retry in a second."""
    return json_error(503, detail, RETRY_AFTER_1, **fields)


def header(scope: Scope, name: bytes) -> bytes | None:
    """The first value of request header ``name`` (lower case), or None."""
    for key, value in scope["headers"]:
        if key == name:
            return value
    return None


async def read_body(receive: Receive, max_bytes: int) -> bytes | None:
    """The request body, or None as soon as it is over ``max_bytes`` (the rest is not read).

    A client that went away before sending it all gives ``b""``.
    """
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return b""
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > max_bytes:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks) if len(chunks) != 1 else chunks[0]


async def send_reply(send: Send, reply: Reply) -> None:
    # A copy of the headers: a middleware further out may add to the list it is given.
    start: HTTPResponseStartEvent = {
        "type": "http.response.start",
        "status": reply.status,
        "headers": list(reply.headers),
    }
    end: HTTPResponseBodyEvent = {
        "type": "http.response.body",
        "body": reply.body,
        "more_body": False,
    }
    await send(start)
    await send(end)


def answered_by(answer: ScopeAnswer) -> Callable[[ASGIApp], ASGIApp]:
    """Route middleware that answers every request of the route with ``answer``.

    The handler behind it is the documented form of the same route, reached
    when the route is built without this layer (see the routes' ``raw`` flag).
    """

    def layer(app: ASGIApp) -> ASGIApp:  # Litestar passes the handler as ``app=``
        del app

        async def raw(scope: Scope, _receive: Receive, send: Send) -> None:
            await send_reply(send, await answer(scope))

        return raw

    return layer


def answered_with_body(answer: BodyAnswer) -> Callable[[ASGIApp], ASGIApp]:
    """``answered_by`` for a route whose answer reads the request body."""

    def layer(app: ASGIApp) -> ASGIApp:
        del app

        async def raw(scope: Scope, receive: Receive, send: Send) -> None:
            await send_reply(send, await answer(scope, receive))

        return raw

    return layer


def to_asgi_response(reply: Reply) -> ASGIResponse:
    """The same reply for a Litestar handler to return."""
    return ASGIResponse(
        body=reply.body,
        status_code=reply.status,
        headers=[(k.decode("latin-1"), v.decode("latin-1")) for k, v in reply.headers],
    )
