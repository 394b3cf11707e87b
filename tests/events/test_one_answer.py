"""One answer for POST /v1/events: the raw ASGI layer and the documented handler agree.

Both apps run on real sockets over the same Redis and PostgreSQL, one with the
route's raw layer and one without it, so every contract case must come back
identical from the two forms of the route: status, headers and body.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable

import httpx
from litestar import Litestar

from ratesvc.api.limits import MAX_BODY_BYTES
from ratesvc.app import create_app
from ratesvc.config import Settings
from ratesvc.events.model import parse_body
from ratesvc.events.plugin import MONITOR_TASK, EventsPlugin
from ratesvc.events.state import EventsState
from ratesvc.plugin import services_of, state_of
from support.servers import serve_app

from .conftest import event

JSON = {"content-type": "application/json"}
CASES: list[bytes] = [
    json.dumps(event()).encode(),
    b"  " + json.dumps(event("click", event_id="a-1")).encode(),
    json.dumps([event("view"), event("view", user_id=8)]).encode(),
    json.dumps([event("view", event_id="dup"), event("view", event_id="dup")]).encode(),
    b'{"event_type": "login", "timestamp": 1}',
    b'{"user_id": "seven", "event_type": "login", "timestamp": 1}',
    b'{"user_id": 1, "event_type": "a b", "timestamp": 1}',
    b'{"user_id": 1, "event_type": "login", "timestamp": -1}',
    b'{"user_id": 1, "event_type": "login", "timestamp": 1, "payload": {"k": "a\\u0000"}}',
    b'[{"user_id": 1, "event_type": "login", "timestamp": 1}, {"user_id": 1}]',
    b"{not json",
    b"",
    b"[]",
    b"42",
    b"null",
]
PER_SERVER = {"date", "server", "ratelimit-limit", "ratelimit-remaining", "ratelimit-reset"}
"""Set outside the route (uvicorn, the rate limiter of each app), per server and second."""


def comparable(response: httpx.Response) -> tuple[int, list[tuple[str, str]], bytes]:
    headers = sorted((k, v) for k, v in response.headers.items() if k not in PER_SERVER)
    return response.status_code, headers, response.content


async def _chunked(size: int) -> AsyncIterator[bytes]:
    """A body without Content-Length, so only the route's bounded read can refuse it."""
    for _ in range(size // 65536 + 1):
        yield b" " * 65536


async def test_raw_layer_and_handler_answer_byte_for_byte(events_settings: Settings) -> None:
    raw_app = create_app(events_settings, plugins=[EventsPlugin()])
    handler_app = create_app(events_settings, plugins=[EventsPlugin(raw=False)])
    async with (
        serve_app(raw_app) as raw_base,
        serve_app(handler_app) as handler_base,
        httpx.AsyncClient(base_url=raw_base, timeout=30) as raw,
        httpx.AsyncClient(base_url=handler_base, timeout=30) as handler,
    ):
        statuses = set()

        async def both(body: Callable[[], bytes | AsyncIterator[bytes]], label: str = "") -> None:
            fast = await raw.post("/v1/events", content=body(), headers=JSON)
            documented = await handler.post("/v1/events", content=body(), headers=JSON)
            assert comparable(fast) == comparable(documented), label
            statuses.add(fast.status_code)

        for case in CASES:
            await both(lambda case=case: case, repr(case[:60]))  # type: ignore[misc]
        await both(lambda: _chunked(MAX_BODY_BYTES), "chunked, over the limit")
        await both(lambda: b"x" * (MAX_BODY_BYTES + 1), "Content-Length over the limit")
        assert comparable(await raw.get("/v1/events")) == comparable(
            await handler.get("/v1/events")
        )
        for app in (raw_app, handler_app):  # the backlog full: the monitor must not re-sample
            await services_of(app).supervisor.stop([MONITOR_TASK], grace_s=2)
            state_of(app, EventsState).appender.observe_length(events_settings.events_stream_max)
        await both(lambda: CASES[0], "backlog full")
    assert statuses == {202, 400, 413, 503}


async def test_documented_in_openapi_with_the_request_body(events_settings: Settings) -> None:
    app: Litestar = create_app(events_settings, plugins=[EventsPlugin()])
    operation = app.openapi_schema.to_schema()["paths"]["/v1/events"]["post"]
    assert set(operation["responses"]) == {"202", "400", "413", "503"}
    body = operation["requestBody"]["content"]["application/json"]
    for example in body["examples"].values():  # what the document shows is accepted
        assert parse_body(json.dumps(example["value"]).encode())
    assert '"required": ["user_id", "event_type", "timestamp"]' in json.dumps(body["schema"])
