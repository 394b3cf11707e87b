"""Size limits on what a request may carry, answered at once and in the JSON error shape.

uvicorn (httptools) refuses a request target over 64 KiB itself, with a
plain-text 400, before the app sees it; below that it accepts a header block
of any size and any number of query parameters.  This raw ASGI middleware
refuses, before any handler runs or any body is read:

- a path plus query string over ``MAX_TARGET_BYTES``: 414;
- more than ``MAX_QUERY_PARAMS`` query parameters: 400;
- more than ``MAX_HEADERS`` headers, or over ``MAX_HEADER_BYTES`` of them: 431;
- a ``Content-Length`` over the body limit: 413 without waiting for the body
  (a chunked body is cut at the same limit while it is read).

The limits are nginx's defaults or above (8 KiB request line and header
buffers), so a client that works through the reverse proxy works here.
"""

from __future__ import annotations

import msgspec
from litestar.enums import ScopeType
from litestar.types import ASGIApp, Receive, Scope, Send

from ratesvc.api.errors import error_code
from ratesvc.api.raw import json_reply, send_reply

MAX_BODY_BYTES = 1024 * 1024
"""The app's request body limit (``request_max_body_size``, and routes that read raw)."""
MAX_TARGET_BYTES = 8 * 1024
MAX_QUERY_PARAMS = 64
MAX_HEADERS = 100
MAX_HEADER_BYTES = 16 * 1024

_encode = msgspec.json.encode


class RequestLimitsMiddleware:
    def __init__(self, app: ASGIApp, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == ScopeType.HTTP:
            refusal = self.refusal(scope)
            if refusal is not None:
                await _refuse(send, *refusal)
                return
        await self.app(scope, receive, send)

    def refusal(self, scope: Scope) -> tuple[int, str] | None:
        """``(status, detail)`` when the request is over a limit, else None."""
        query = scope["query_string"]
        path = scope.get("raw_path") or scope["path"].encode()
        if len(path) + len(query) > MAX_TARGET_BYTES:
            return 414, f"request target over {MAX_TARGET_BYTES} bytes"
        if query and query.count(b"&") + query.count(b";") >= MAX_QUERY_PARAMS:
            return 400, f"more than {MAX_QUERY_PARAMS} query parameters"
        count = size = 0
        for name, value in scope["headers"]:
            count += 1
            size += len(name) + len(value)
            if name == b"content-length" and value.isdigit() and int(value) > self.max_body_bytes:
                return 413, f"request body over {self.max_body_bytes} bytes"
        if count > MAX_HEADERS:
            return 431, f"more than {MAX_HEADERS} headers"
        if size > MAX_HEADER_BYTES:
            return 431, f"headers over {MAX_HEADER_BYTES} bytes"
        return None


async def _refuse(send: Send, status: int, detail: str) -> None:
    body = _encode({"error": error_code(status), "detail": detail})
    await send_reply(send, json_reply(status, body, (b"connection", b"close")))
