"""The process-local copies of pre-rendered answers: at most 50 ms old, one read at a time."""

from __future__ import annotations

import asyncio
import time

from redis.asyncio import Redis

from ratesvc.courses import keys
from ratesvc.courses.local import LocalAnswers


def _stored(etag: str, body: bytes, status: int = 200) -> bytes:
    valid_until_ms = int(time.time() * 1000) + 60_000
    return f"{valid_until_ms} {status} {etag}\n".encode() + body


async def test_a_write_reaches_the_copy_within_max_age(redis: Redis) -> None:
    await redis.set(keys.body_key("default"), _stored('"a"', b'{"v":1}'))
    answers = LocalAnswers(redis, max_age_s=0.05)
    first = await answers.get("default")
    assert first is not None
    assert first.body == b'{"v":1}'
    await redis.set(keys.body_key("default"), _stored('"b"', b'{"v":2}'))
    written_at = time.monotonic()
    while (answer := await answers.get("default")) is not None and answer.etag != '"b"':
        # max age, plus a read round trip and scheduling on a busy test machine
        assert time.monotonic() - written_at <= 0.05 + 0.1
        await asyncio.sleep(0.005)
    assert answer is not None
    assert answer.body == b'{"v":2}'


async def test_concurrent_requests_share_one_read(redis: Redis) -> None:
    await redis.set(keys.body_key("default"), _stored('"a"', b"{}"))
    answers = LocalAnswers(redis, max_age_s=10)
    got = await asyncio.gather(*(answers.get("default") for _ in range(50)))
    assert {a.etag for a in got if a is not None} == {'"a"'}
    assert answers.reads == 1


async def test_headers_are_the_handlers(redis: Redis) -> None:
    await redis.set(keys.body_key("binance"), _stored('"e"', b"[1]"))
    await redis.set(keys.body_key("coingecko"), _stored('"u"', b"{}", status=503))
    answers = LocalAnswers(redis)
    ok = await answers.get("binance")
    assert ok is not None
    assert ok.headers == [
        (b"content-type", b"application/json"),
        (b"content-length", b"3"),
        (b"etag", b'"e"'),
        (b"cache-control", b"public, max-age=1, must-revalidate"),
    ]
    assert ok.matches(b'W/"x", "e"')
    assert ok.matches(b" * ")
    assert not ok.matches(b'"f"')
    unavailable = await answers.get("coingecko")
    assert unavailable is not None
    assert (b"retry-after", b"1") in unavailable.headers
    assert (b"cache-control", b"no-store") in unavailable.headers
    assert await answers.get("absent") is None
