"""Oversized and malformed requests, many idle connections, CORS: over a real socket."""

from __future__ import annotations

import asyncio
import contextlib
import json
import resource
import time
from collections.abc import AsyncIterator

import httpx
import msgspec
import pytest

from ratesvc.api.limits import (
    MAX_BODY_BYTES,
    MAX_HEADER_BYTES,
    MAX_QUERY_PARAMS,
    MAX_TARGET_BYTES,
)
from ratesvc.app import create_app
from ratesvc.config import Settings
from support.apps import app_client
from support.servers import serve_app

QUICK_S = 1.0


class Answer(msgspec.Struct):
    status: int
    headers: dict[str, str]
    body: bytes
    took_s: float


async def exchange(port: int, request: bytes) -> Answer:
    """Send raw bytes, read one answer (the server may close before reading them all)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    started = time.monotonic()
    try:
        writer.write(request)
        with contextlib.suppress(ConnectionError):  # refused mid-upload: the answer waits
            await writer.drain()
        async with asyncio.timeout(10):
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            headers = {
                k.lower(): v.strip()
                for k, _, v in (line.partition(":") for line in lines[1:] if line)
            }
            body = await reader.readexactly(int(headers.get("content-length", "0")))
    finally:
        writer.close()
    return Answer(int(lines[0].split()[1]), headers, body, time.monotonic() - started)


@pytest.fixture
async def port(settings: Settings) -> AsyncIterator[int]:
    async with serve_app(create_app(settings)) as base:
        yield int(base.rsplit(":", 1)[1])


def get(target: bytes, *headers: bytes) -> bytes:
    return (
        b"GET "
        + target
        + b" HTTP/1.1\r\nHost: t\r\n"
        + b"".join(h + b"\r\n" for h in headers)
        + b"\r\n"
    )


def assert_json_error(answer: Answer, status: int) -> None:
    assert answer.status == status, answer
    assert answer.headers["content-type"].startswith("application/json")
    assert "error" in json.loads(answer.body)
    assert answer.took_s < QUICK_S, answer.took_s


async def test_oversized_parts_of_a_request_get_a_quick_json_4xx(port: int) -> None:
    long_query = b"/v1/courses?x=" + b"a" * MAX_TARGET_BYTES
    assert_json_error(await exchange(port, get(long_query)), 414)
    long_path = b"/v1/stats/" + b"a" * MAX_TARGET_BYTES
    assert_json_error(await exchange(port, get(long_path)), 414)
    many = b"&".join([b"direction=BTC-USD"] * (MAX_QUERY_PARAMS + 1))
    assert_json_error(await exchange(port, get(b"/v1/courses?" + many)), 400)
    big_header = b"X-Big: " + b"a" * MAX_HEADER_BYTES
    assert_json_error(await exchange(port, get(b"/v1/health", big_header)), 431)
    huge_header = b"X-Big: " + b"a" * 1_000_000
    assert_json_error(await exchange(port, get(b"/v1/health", huge_header)), 431)
    many_headers = [b"X-H%d: v" % i for i in range(200)]
    assert_json_error(await exchange(port, get(b"/v1/health", *many_headers)), 431)


async def test_a_body_announced_too_large_is_refused_before_it_is_sent(port: int) -> None:
    head = (
        b"POST /v1/events HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
        b"Content-Length: %d\r\n\r\n" % (MAX_BODY_BYTES + 1)
    )
    # Only the start of the body is sent: the answer must not wait for the rest.
    assert_json_error(await exchange(port, head + b"[{"), 413)


async def test_a_chunked_body_is_cut_at_the_limit(port: int) -> None:
    chunk = b"%x\r\n%s\r\n" % (256 * 1024, b" " * (256 * 1024))
    request = (
        b"POST /v1/events HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n" + chunk * 5 + b"0\r\n\r\n"
    )
    assert_json_error(await exchange(port, request), 413)


async def test_what_the_server_refuses_before_the_app(port: int) -> None:
    """uvicorn answers these itself, in plain text; behind nginx they get its JSON pages."""
    for request in (
        get(b"/v1/health?x=" + b"a" * 70_000),  # over httptools' 64 KiB request target
        b"\x00\x01 not http\r\n\r\n",
    ):
        answer = await exchange(port, request)
        assert answer.status == 400
        assert answer.took_s < QUICK_S


def _raise_fd_limit(needed: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < needed:
        wanted = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    assert soft >= needed, f"this test needs {needed} open files; the hard limit is {hard}"


async def test_a_thousand_idle_connections_do_not_stop_others_being_served(
    settings: Settings,
) -> None:
    _raise_fd_limit(4096)
    async with (
        serve_app(create_app(settings)) as base,
        httpx.AsyncClient(base_url=base) as client,
    ):
        port = int(base.rsplit(":", 1)[1])
        idle: list[asyncio.StreamWriter] = []
        try:
            # 500 that made a request and keep the connection alive, 500 that stopped
            # half-way through their headers (slow clients).
            for n in range(1000):
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
                idle.append(writer)
                if n % 2:
                    writer.write(b"GET /v1/health HTTP/1.1\r\nHost: t\r\n\r\n")
                    await reader.readuntil(b'{"status":"ok"}')
                else:
                    writer.write(b"GET /v1/health HTTP/1.1\r\nHost: t\r\nX-Slow: ")
            for _ in range(20):
                started = time.monotonic()
                health = await client.get("/v1/health")
                events = await client.get("/v1/stats/login")
                assert (health.status_code, events.status_code) == (200, 200)
                assert time.monotonic() - started < QUICK_S
        finally:
            for writer in idle:
                writer.close()


async def test_cors_is_off_by_default(settings: Settings) -> None:
    origin = {"Origin": "https://charts.example"}
    async with app_client(create_app(settings)) as client:
        answer = await client.get("/v1/health", headers=origin)
        assert "access-control-allow-origin" not in answer.headers
        preflight = await client.options(
            "/v1/courses", headers={**origin, "Access-Control-Request-Method": "GET"}
        )
        assert "access-control-allow-origin" not in preflight.headers


async def test_cors_allows_only_the_configured_origins(settings: Settings) -> None:
    allowed = "https://charts.example"
    app = create_app(msgspec.structs.replace(settings, cors_origins=(allowed,)))
    async with app_client(app) as client:
        answer = await client.get("/v1/health", headers={"Origin": allowed})
        assert answer.headers["access-control-allow-origin"] == allowed
        preflight = await client.options(
            "/v1/health", headers={"Origin": allowed, "Access-Control-Request-Method": "GET"}
        )
        assert preflight.status_code in (200, 204)
        assert preflight.headers["access-control-allow-origin"] == allowed
        other = await client.get("/v1/health", headers={"Origin": "https://evil.example"})
        assert "access-control-allow-origin" not in other.headers
