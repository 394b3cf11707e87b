"""The local answer cache: quotes at most 50 ms old, one read at a time, one answer per shape."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import UTC, datetime, timedelta

from redis.asyncio import Redis

from ratesvc.courses.directions import BY_NAME, DIRECTIONS
from ratesvc.courses.local import LocalAnswers
from ratesvc.courses.plugin import DEFAULT_SOURCES
from ratesvc.courses.query import CoursesQueries
from ratesvc.courses.rates import Pricing
from ratesvc.courses.sources import Freshness, Sources

from .conftest import PRICES, write_prices

SOURCES = Sources(DEFAULT_SOURCES)
QUERIES = CoursesQueries(DIRECTIONS, SOURCES.names)
LONG = Pricing(SOURCES, Freshness(dict.fromkeys(SOURCES.names, 3600.0)))


def local(redis: Redis, **options: float) -> LocalAnswers:
    return LocalAnswers(redis, BY_NAME, LONG, "omit", **options)  # type: ignore[arg-type]


def btc_usd(body: bytes) -> float:
    rows = json.loads(body)["courses"]
    return float(next(r["value"] for r in rows if r["direction"] == "BTC-USD"))


async def test_a_write_reaches_answers_within_max_age(redis: Redis) -> None:
    await write_prices(redis, PRICES, datetime.now(UTC))
    answers = local(redis, max_age_s=0.05)
    query = QUERIES.parse(b"direction=BTC-USD")
    first = await answers.answer(query)
    assert btc_usd(first.reply.body) == 67158.90759935
    await write_prices(redis, {"binance|BTCUSDT": "70000.5"}, datetime.now(UTC))
    written_at = time.monotonic()
    while btc_usd((answer := await answers.answer(query)).reply.body) != 70000.5:
        # max age, plus a read round trip and scheduling on a busy test machine
        assert time.monotonic() - written_at <= 0.05 + 0.1
        await asyncio.sleep(0.005)
    assert answer.etag != first.etag


async def test_concurrent_requests_share_one_read_and_one_render(redis: Redis) -> None:
    await write_prices(redis, PRICES, datetime.now(UTC))
    answers = local(redis, max_age_s=10)
    query = QUERIES.parse(b"")
    got = await asyncio.gather(*(answers.answer(query) for _ in range(50)))
    assert len({id(a) for a in got}) == 1
    assert answers.reads == 1
    assert answers.renders == 1


async def test_every_spelling_of_a_shape_shares_one_answer(redis: Redis) -> None:
    await write_prices(redis, PRICES, datetime.now(UTC))
    answers = local(redis, max_age_s=10)
    spellings = [
        b"direction=BTC-USD,ETH-RUB",
        b"direction=eth-rub&direction=btc-usd",
        b"direction=%20Eth-Rub%20,,BTC-USD&direction=BTC-USD",
        b"direction=ETH-RUB,btc-usd&exchanger=",
    ]
    got = [await answers.answer(QUERIES.parse(raw)) for raw in spellings]
    assert len({id(a) for a in got}) == 1
    assert answers.renders == 1
    rows = json.loads(got[0].reply.body)["courses"]
    assert [r["direction"] for r in rows] == ["BTC-USD", "ETH-RUB"]


async def test_unchanged_quotes_keep_their_rendered_answers(redis: Redis) -> None:
    await write_prices(redis, PRICES, datetime.now(UTC))
    answers = local(redis, max_age_s=0.0)  # every request reads Redis
    query = QUERIES.parse(b"exchanger=coingecko")
    for _ in range(5):
        await answers.answer(query)
    assert answers.reads == 5
    assert answers.renders == 1


async def test_the_cache_is_bounded(redis: Redis) -> None:
    await write_prices(redis, PRICES, datetime.now(UTC))
    answers = local(redis, max_age_s=10, max_answers=4)
    names = [d.name for d in DIRECTIONS]
    for name in names:
        await answers.answer(QUERIES.parse(f"direction={name}".encode()))
    assert answers.cached == 4
    # The most recent shapes stayed: asking again renders nothing.
    renders = answers.renders
    await answers.answer(QUERIES.parse(f"direction={names[-1]}".encode()))
    assert answers.renders == renders


async def test_an_answer_is_rendered_again_when_a_row_turns_stale(redis: Redis) -> None:
    # Binance fresh for 0.3 s more: then BTC-USD fails over to CoinGecko.
    await write_prices(redis, PRICES, datetime.now(UTC) - timedelta(seconds=3599.7))
    await write_prices(redis, {"coingecko|bitcoin/usd": "67100.1"}, datetime.now(UTC))
    answers = local(redis, max_age_s=10)
    query = QUERIES.parse(b"direction=BTC-USD")
    assert json.loads((await answers.answer(query)).reply.body)["exchanger"] == "binance"
    started = time.monotonic()
    while json.loads((await answers.answer(query)).reply.body)["exchanger"] != "coingecko":
        assert time.monotonic() - started < 5
        await asyncio.sleep(0.02)
    assert answers.reads == 1  # no new quotes needed: validity ran out


async def test_headers_and_304(redis: Redis) -> None:
    await write_prices(redis, {"binance|BTCUSDT": "100"}, datetime.now(UTC))
    answers = local(redis)
    ok = await answers.answer(QUERIES.parse(b"direction=BTC-USD"))
    etag = ok.etag
    assert ok.reply.status == 200
    assert ok.reply.headers == [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(ok.reply.body)).encode()),
        (b"etag", etag),
        (b"cache-control", b"public, max-age=1, must-revalidate"),
    ]
    assert ok.reply_to(b'W/"x", ' + etag).status == 304
    assert ok.reply_to(b" * ").status == 304
    assert ok.reply_to(b'"other"') is ok.reply
    assert ok.reply_to(None) is ok.reply
    not_modified = ok.reply_to(etag)
    assert not_modified.body == b""
    assert (b"etag", etag) in not_modified.headers
    unavailable = await answers.answer(QUERIES.parse(b"direction=ETH-USD"))
    assert unavailable.reply.status == 503
    assert (b"retry-after", b"1") in unavailable.reply.headers
    assert (b"cache-control", b"no-store") in unavailable.reply.headers
    assert unavailable.reply_to(b"*") is unavailable.reply  # never a 304 for an error
