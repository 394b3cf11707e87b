"""/v1/courses/history: the contract, roll-ups, the chunk cache, bad input, restarts, migration."""

from __future__ import annotations

import asyncio
import functools
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from redis.asyncio import Redis

from ratesvc.app import create_app
from ratesvc.config import Settings
from ratesvc.courses import keys
from ratesvc.courses.bars import MinuteBars
from ratesvc.courses.history_cache import bump_generations
from ratesvc.courses.plugin import DEFAULT_SOURCES
from ratesvc.courses.postgres_sink import PostgresQuoteSink, prune_history
from ratesvc.courses.rates import Pricing
from ratesvc.courses.sources import Freshness, Sources
from ratesvc.courses.state import CoursesState
from ratesvc.migrate import apply_migrations
from ratesvc.models import Quote
from ratesvc.plugin import state_of
from support.apps import app_client
from support.servers import eventually

from .conftest import Simulated

HISTORY = "/v1/courses/history"
MINUTE = timedelta(minutes=1)


def day_start(days_ago: int) -> datetime:
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return today - timedelta(days=days_ago)


def ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


async def seed_minutes(
    db: asyncpg.Connection, direction: str, source: str, start: datetime, closes: list[str]
) -> None:
    """One bar per minute from ``start``: open = previous close, high/low around them."""
    rows = []
    previous = Decimal(closes[0])
    for index, text in enumerate(closes):
        close = Decimal(text)
        minute = start + index * MINUTE
        high, low = max(previous, close) + 1, min(previous, close) - 1
        rows.append(
            (direction, source, minute, previous, high, low, close, minute, minute, 2 + index)
        )
        previous = close
    await db.executemany(
        """INSERT INTO rate_history
               (direction, source, minute, open, high, low, close, open_at, close_at, samples)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)""",
        rows,
    )


def points_of(response: httpx.Response) -> list[dict[str, Any]]:
    assert response.status_code == 200, response.text
    points: list[dict[str, Any]] = response.json()["points"]
    return points


async def test_history_contract_against_the_simulators(
    courses_settings: Settings, simulated: Simulated
) -> None:
    async with app_client(create_app(courses_settings)) as client:
        simulated.upstreams.market.set_price("BTCUSDT", 70123.25)

        def shows_pinned_price(response: httpx.Response) -> bool:
            points = response.json().get("points") if response.status_code == 200 else []
            return bool(points) and points[-1]["close"] == 70123.25

        response = await eventually(
            lambda: client.get(HISTORY, params={"direction": "BTC-USD"}), shows_pinned_price
        )
        body = response.json()
        assert set(body) == {"direction", "exchanger", "interval", "points"}
        assert (body["direction"], body["exchanger"], body["interval"]) == (
            "BTC-USD",
            "binance",
            "1m",
        )
        assert response.headers["content-type"] == "application/json"
        last = body["points"][-1]
        assert set(last) == {"t", "open", "high", "low", "close", "samples"}
        for point in body["points"]:
            assert point["t"] % 60_000 == 0
            assert point["low"] <= min(point["open"], point["close"])
            assert point["high"] >= max(point["open"], point["close"])
            assert point["samples"] >= 1
        ts = [p["t"] for p in body["points"]]
        assert ts == sorted(set(ts))
        # The cross rate and the other source have their own bars.
        for params in (
            {"direction": "btc-rub"},
            {"direction": "BTC-USD", "exchanger": "coingecko"},
            {"direction": "USDTERC-RUB", "exchanger": "COINGECKO", "interval": "1H"},
        ):
            await eventually(
                functools.partial(client.get, HISTORY, params=params),
                lambda r: bool(points_of(r)),
            )


async def test_intervals_roll_up_the_minutes(
    courses_settings: Settings, db: asyncpg.Connection
) -> None:
    start = day_start(2) + timedelta(hours=3)
    closes = ["100", "101", "99", "105", "104", "103", "110", "90", "95", "96", "97"]
    await seed_minutes(db, "ETH-RUB", "coingecko", start, closes)
    async with app_client(create_app(courses_settings)) as client:
        common: dict[str, str | int] = {"direction": "ETH-RUB", "exchanger": "coingecko"}
        window: dict[str, str | int] = {"from": ms(start), "to": ms(start + 3 * MINUTE * 10)}
        minutes = points_of(await client.get(HISTORY, params={**common, **window}))
        assert [p["t"] for p in minutes] == [ms(start + i * MINUTE) for i in range(len(closes))]
        assert [p["close"] for p in minutes] == [float(c) for c in closes]

        five = points_of(await client.get(HISTORY, params={**common, **window, "interval": "5m"}))
        assert [p["t"] for p in five] == [
            ms(start),
            ms(start + 5 * MINUTE),
            ms(start + 10 * MINUTE),
        ]
        first = five[0]
        assert (first["open"], first["close"]) == (100, 104)
        assert (first["high"], first["low"]) == (106, 98)  # seeded as max/min of open, close +- 1
        assert first["samples"] == sum(range(2, 7))
        assert (five[1]["open"], five[1]["close"], five[1]["high"], five[1]["low"]) == (
            104,
            96,
            111,
            89,
        )

        hour = points_of(await client.get(HISTORY, params={**common, **window, "interval": "1h"}))
        assert len(hour) == 1
        assert hour[0]["t"] == ms(start)
        assert (hour[0]["open"], hour[0]["close"], hour[0]["high"], hour[0]["low"]) == (
            100,
            97,
            111,
            89,
        )

        # `from` inside a bucket takes that bucket; `to` cuts at the bucket starting at it.
        iso = {
            "from": (start + 2 * MINUTE + timedelta(seconds=30)).isoformat().replace("+00:00", "Z"),
            "to": (start + 4 * MINUTE).strftime("%Y-%m-%dT%H:%M:%S+00:00"),
        }
        cut = points_of(await client.get(HISTORY, params={**common, **iso}))
        assert [p["close"] for p in cut] == [99, 105, 104]
        naive = {**iso, "from": (start + 2 * MINUTE).strftime("%Y-%m-%dT%H:%M:%S")}
        assert points_of(await client.get(HISTORY, params={**common, **naive})) == cut

        # Nothing stored for the other source, and nothing before the data.
        other = {**window, "direction": "ETH-RUB"}
        assert points_of(await client.get(HISTORY, params=other)) == []
        day = points_of(await client.get(HISTORY, params={**common, "to": ms(start - MINUTE)}))
        assert day == []


async def test_closed_chunks_come_from_the_cache_until_a_late_write(
    courses_settings: Settings, db: asyncpg.Connection, redis: Redis
) -> None:
    start = day_start(1) + timedelta(hours=5)
    await seed_minutes(db, "BTC-USD", "binance", start, ["10", "11", "12"])
    params: dict[str, str | int] = {
        "direction": "BTC-USD",
        "from": ms(start),
        "to": ms(start + 59 * MINUTE),
    }
    async with app_client(create_app(courses_settings)) as client:
        first = points_of(await client.get(HISTORY, params=params))
        assert [p["close"] for p in first] == [10, 11, 12]
        assert await redis.exists(keys.history_chunk_key("BTC-USD", "binance", "1m", ms(start)))
        # Closed hours are not read again from PostgreSQL...
        await db.execute("UPDATE rate_history SET close = 13 WHERE minute = $1", start)
        assert points_of(await client.get(HISTORY, params=params)) == first
        # ...until the sink says a closed minute of this pair was written late.
        await bump_generations(redis, [("BTC-USD", "binance")])
        again = points_of(await client.get(HISTORY, params=params))
        assert [p["close"] for p in again] == [13, 11, 12]
        # With Redis gone the answer comes from PostgreSQL alone.
        await redis.flushdb()
        assert points_of(await client.get(HISTORY, params=params)) == again


async def test_a_hot_key_reads_postgresql_once_per_chunk_not_per_request(
    courses_settings: Settings, db: asyncpg.Connection
) -> None:
    await seed_minutes(db, "BTC-USD", "binance", day_start(1), ["100"] * 1440)
    app = create_app(courses_settings)
    async with app_client(app) as client:
        reader = state_of(app, CoursesState).history
        params = {"direction": "BTC-USD"}
        first = points_of(await client.get(HISTORY, params=params))
        assert first
        before = reader.postgres_reads
        answers = await asyncio.gather(*(client.get(HISTORY, params=params) for _ in range(20)))
        assert all(r.status_code == 200 for r in answers)
        # Closed chunks are cached; the open hour (or two, just after the hour) is read by
        # one request at a time and reused for a second.
        assert reader.postgres_reads - before <= 4


async def test_sink_merges_a_minute_written_in_parts_and_bumps_late_minutes(
    database_url: str, db: asyncpg.Connection, redis: Redis
) -> None:
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=2)
    try:
        bars = MinuteBars(
            Pricing(Sources(DEFAULT_SOURCES), Freshness({"binance": 10.0, "coingecko": 180.0}))
        )
        sink = PostgresQuoteSink(pool, bars=bars, redis=redis)
        minute = datetime.now(UTC).replace(second=0, microsecond=0) - 10 * MINUTE

        def quote(value: str, second: int) -> Quote:
            at = minute + timedelta(seconds=second)
            return Quote(source="binance", market="ETHUSDT", value=Decimal(value), observed_at=at)

        await sink.write([quote("3000", 10)])
        await sink.write([quote("3010", 20), quote("2990", 30)])  # one batch: newest only
        await sink.write([quote("2995", 40)])
        await sink.write([quote("3005", 5)])  # older than the price known: not a sample
        row = await db.fetchrow(
            "SELECT open, high, low, close, samples FROM rate_history "
            "WHERE direction = 'ETH-USD' AND source = 'binance' AND minute = $1",
            minute,
        )
        assert row is not None
        assert dict(row) == {
            "open": Decimal("3000"),
            "high": Decimal("3000"),
            "low": Decimal("2990"),
            "close": Decimal("2995"),
            "samples": 3,
        }
        # Ten minutes ago is closed: a cached chunk might hold it, so its generation moved.
        assert int(await redis.get(keys.history_generation_key("ETH-USD", "binance")) or 0) >= 1
        assert sink.pending == 0
    finally:
        await pool.close()


BAD_INPUT: list[tuple[dict[str, str | list[str]], str | None]] = [
    ({}, "direction"),
    ({"direction": ""}, "direction"),
    ({"direction": "  "}, "direction"),
    ({"direction": "BTC-EUR"}, "direction"),
    ({"direction": "BTC-USD,ETH-USD"}, "direction"),
    ({"direction": ["BTC-USD", "ETH-USD"]}, "direction"),
    ({"direction": "BTC-USD", "exchanger": "kraken"}, "exchanger"),
    ({"direction": "BTC-USD", "exchanger": ["binance", "coingecko"]}, "exchanger"),
    ({"direction": "BTC-USD", "interval": "2m"}, "interval"),
    ({"direction": "BTC-USD", "interval": "1M "}, None),  # case and spaces do not matter
    ({"direction": "BTC-USD", "from": "yesterday"}, "from"),
    ({"direction": "BTC-USD", "to": "2026-13-01T00:00:00Z"}, "to"),
    ({"direction": "BTC-USD", "to": "1" * 5000}, "to"),
    ({"direction": "BTC-USD", "from": "-5"}, "from"),
    ({"direction": "BTC-USD", "from": "1.5e12"}, "from"),
    ({"direction": "BTC-USD", "from": "\uff12\uff10\uff12\uff16"}, "from"),  # full-width digits
    ({"direction": "BTC-USD", "from": "2026-12-02T00:00:00Z", "to": "2026-12-01"}, "from"),
    ({"direction": "BTC-USD", "from": "2026-11-01", "to": "2026-11-05"}, "from"),
    ({"direction": "BTC-USD", "interval": "1d", "from": "2000-01-01"}, "from"),
    ({"direction": " btc-usd ", "exchanger": "", "interval": "", "from": "", "to": ""}, None),
    ({"direction": ["BTC-USD", "btc-usd"]}, None),
]


async def test_bad_input_is_a_400_naming_the_parameter(courses_settings: Settings) -> None:
    async with app_client(create_app(courses_settings)) as client:
        schema = (await client.get("/docs/openapi.json")).json()
        operation = schema["paths"]["/v1/courses/history"]["get"]
        names = [p["name"] for p in operation["parameters"]]
        assert names == ["direction", "exchanger", "interval", "from", "to"]
        assert all(p.get("examples") for p in operation["parameters"])
        assert operation["responses"]["200"]["content"]["application/json"]["examples"]
        for params, culprit in BAD_INPUT:
            response = await client.get(HISTORY, params=params)
            assert response.headers["content-type"] == "application/json", params
            if culprit is None:
                assert response.status_code == 200, (params, response.text)
                assert response.json()["direction"] == "BTC-USD"
                continue
            assert response.status_code == 400, (params, response.text)
            body = response.json()
            assert body["error"] == "bad_request"
            assert body["parameter"] == culprit, (params, body)
            assert culprit in body["detail"], (params, body)


async def test_history_survives_a_restart(courses_settings: Settings, redis: Redis) -> None:
    params = {"direction": "ETH-USD"}
    async with app_client(create_app(courses_settings)) as client:
        before = points_of(
            await eventually(
                lambda: client.get(HISTORY, params=params), lambda r: bool(points_of(r))
            )
        )
    await redis.flushdb()  # a Redis without persistence loses everything
    async with app_client(create_app(courses_settings)) as client:
        after = points_of(await client.get(HISTORY, params=params))
    by_t = {p["t"]: p for p in after}
    assert before[0]["t"] in by_t
    assert by_t[before[0]["t"]]["open"] == before[0]["open"]


async def test_postgres_unreachable_is_a_503_json(courses_settings: Settings) -> None:
    app = create_app(courses_settings)
    async with app_client(app) as client:
        await app.state.services.db.close()
        response = await client.get(HISTORY, params={"direction": "BTC-USD"})
        assert response.status_code == 503
        assert response.json()["error"] == "service_unavailable"
        assert response.headers["retry-after"]


async def test_existing_quote_history_migrates_as_flat_bars(database_url: str) -> None:
    admin = await asyncpg.connect(database_url)
    await admin.execute("DROP DATABASE IF EXISTS migrate_history")
    await admin.execute("CREATE DATABASE migrate_history")
    conn = await asyncpg.connect(database_url.replace("/ratesvc?", "/migrate_history?"))
    try:
        migrations = Path(__file__).parents[2] / "src" / "ratesvc" / "migrations"
        await conn.execute(
            "CREATE TABLE schema_migrations (version integer PRIMARY KEY, name text NOT NULL, "
            "applied_at timestamptz NOT NULL DEFAULT now())"
        )
        for version, name in ((1, "quotes"), (2, "events")):
            await conn.execute((migrations / f"{version:04d}_{name}.sql").read_text())
            await conn.execute("INSERT INTO schema_migrations VALUES ($1, $2)", version, name)
        minute = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
        await conn.executemany(
            "INSERT INTO quote_history VALUES ($1, $2, $3, $4, $5)",
            [
                ("binance", "BTCUSDT", minute, Decimal("60000.5"), minute),
                ("binance", "USDCUSDT", minute, Decimal("1.0002"), minute),
                ("coingecko", "tether/rub", minute, Decimal("92.4"), minute),
                ("coingecko", "tether/usd", minute, Decimal("1.0005"), minute),
                ("coingecko", "bitcoin/rub", minute, Decimal("5550000"), minute),
                ("binance", "ETHUSDT", minute + MINUTE, Decimal("3000"), minute + MINUTE),
            ],
        )
        assert await apply_migrations(conn) == [3]
        rows = await conn.fetch(
            "SELECT direction, source, minute, open, high, low, close, samples FROM rate_history"
        )
        bars = {(r["direction"], r["source"], r["minute"]): r for r in rows}
        assert bars[("BTC-USD", "binance", minute)]["close"] == Decimal("60000.5")
        cross = bars[("BTC-RUB", "binance", minute)]
        assert cross["close"] == round(Decimal("60000.5") * Decimal("92.4") / Decimal("1.0005"), 8)
        assert cross["open"] == cross["high"] == cross["low"] == cross["close"]
        assert bars[("USDTTRC-USD", "binance", minute)]["close"] == round(1 / Decimal("1.0002"), 8)
        assert bars[("BTC-RUB", "coingecko", minute)]["close"] == Decimal("5550000")
        assert bars[("USDTERC-USD", "coingecko", minute)]["close"] == Decimal("1.0005")
        assert ("ETH-USD", "binance", minute + MINUTE) in bars
        # No USD-RUB legs in that minute: no binance ETH-RUB bar rather than a wrong one.
        assert ("ETH-RUB", "binance", minute + MINUTE) not in bars
        assert {r["samples"] for r in rows} == {1}
    finally:
        await conn.close()
        await admin.execute("DROP DATABASE migrate_history")
        await admin.close()


async def test_retention_prunes_old_minutes(database_url: str, db: asyncpg.Connection) -> None:
    old, recent = day_start(40), day_start(2)
    await seed_minutes(db, "BTC-USD", "binance", old, ["5", "6"])
    await seed_minutes(db, "BTC-USD", "binance", recent, ["7"])
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=1)
    try:
        assert await prune_history(pool, keep_days=30) == 2
    finally:
        await pool.close()
    kept = await db.fetch("SELECT minute FROM rate_history")
    assert [r["minute"] for r in kept] == [recent]


async def test_ranges_of_nothing_neither_fill_redis_nor_query_per_chunk(
    courses_settings: Settings, redis: Redis
) -> None:
    app = create_app(courses_settings)
    async with app_client(app) as client:
        reader = state_of(app, CoursesState).history
        long_ago = {
            "direction": "BTC-USD",
            "interval": "1d",
            "from": "2000-01-01",
            "to": "2013-01-01",
        }
        assert points_of(await client.get(HISTORY, params=long_ago)) == []
        assert not [k async for k in redis.scan_iter(f"{keys.HISTORY_CHUNK_PREFIX}*")]
        before = reader.postgres_reads
        future = {
            "direction": "BTC-USD",
            "interval": "1h",
            "from": "2100-01-01",
            "to": "2100-07-01",
        }
        assert points_of(await client.get(HISTORY, params=future)) == []
        assert reader.postgres_reads == before
