"""GET /v1/convert over a real socket: the rate /v1/courses serves, exact decimals, clear errors."""

from __future__ import annotations

from decimal import Decimal

import httpx
from redis.asyncio import Redis

from ratesvc.app import create_app
from ratesvc.config import Settings
from ratesvc.courses import keys
from support.apps import app_client
from support.servers import eventually

from .conftest import Simulated
from .test_courses_api import complete_from


def row(client_answer: httpx.Response, direction: str) -> dict[str, object]:
    return next(r for r in client_answer.json()["courses"] if r["direction"] == direction)


async def test_the_rate_is_the_courses_value(frozen_settings: Settings) -> None:
    async with app_client(create_app(frozen_settings)) as client:
        courses = await client.get("/v1/courses")
        btc_rub = row(courses, "BTC-RUB")
        answer = await client.get(
            "/v1/convert", params={"from": "btc", "to": "RUB", "amount": "0.5"}
        )
        assert answer.status_code == 200
        body = answer.json()
        assert list(body) == [
            "from",
            "to",
            "amount",
            "rate",
            "result",
            "source",
            "updated_at",
            "legs",
        ]
        assert (body["from"], body["to"], body["amount"]) == ("BTC", "RUB", 0.5)
        assert body["rate"] == btc_rub["value"]
        assert (body["source"], body["updated_at"], body["legs"]) == (
            btc_rub["source"],
            btc_rub["updated_at"],
            btc_rub["legs"],
        )
        # Decimal end to end: the printed result is exactly amount x rate, rounded to 8 places.
        rate = Decimal(answer.text.split('"rate":')[1].split(",")[0])
        result = Decimal(answer.text.split('"result":')[1].split(",")[0])
        assert result == (Decimal("0.5") * rate).quantize(Decimal("1e-8"))
        assert "etag" in answer.headers

        default_amount = await client.get("/v1/convert?from=ETH&to=USD")
        assert default_amount.json()["amount"] == 1
        assert default_amount.json()["result"] == row(courses, "ETH-USD")["value"]
        assert "legs" not in default_amount.json()

        inverse = (await client.get("/v1/convert?from=USD&to=BTC&amount=1000")).json()
        btc_usd = Decimal(str(row(courses, "BTC-USD")["value"]))
        assert Decimal(str(inverse["result"])) == (1000 / btc_usd).quantize(Decimal("1e-8"))
        assert abs(Decimal(str(inverse["rate"])) * btc_usd - 1) < Decimal("1e-12")

        cross = (await client.get("/v1/convert?from=BTC&to=ETH&amount=2")).json()
        assert cross["legs"] == ["binance:BTC-USD", "binance:ETH-USD"]
        eth_usd = Decimal(str(row(courses, "ETH-USD")["value"]))
        assert Decimal(str(cross["result"])) == (2 * btc_usd / eth_usd).quantize(Decimal("1e-8"))


BAD = [
    ("from=BTC&to=RUB&amount=-1", "must be positive"),
    ("from=BTC&to=RUB&amount=0", "must be positive"),
    ("from=BTC&to=RUB&amount=nan", "finite"),
    ("from=BTC&to=RUB&amount=inf", "finite"),
    ("from=BTC&to=RUB&amount=-Infinity", "finite"),
    ("from=BTC&to=RUB&amount=1e16", "over 1e15"),
    ("from=BTC&to=RUB&amount=ten", "not a number"),
    ("to=RUB", "`from` is required"),
    ("from=BTC&to=", "`to` is required"),
    ("from=DOGE&to=RUB", "unknown asset"),
    ("from=USD&to=RUB", "two fiat currencies"),
]


async def test_bad_input_is_a_400_naming_it(frozen_settings: Settings) -> None:
    async with app_client(create_app(frozen_settings)) as client:
        for query, detail in BAD:
            answer = await client.get(f"/v1/convert?{query}")
            assert answer.status_code == 400, query
            assert answer.headers["content-type"] == "application/json"
            assert answer.headers["cache-control"] == "no-store"
            assert answer.json()["error"] == "bad_request"
            assert detail in answer.json()["detail"], query


async def test_no_fresh_rate_is_a_503_with_retry_after(
    frozen_settings: Settings, redis: Redis
) -> None:
    await redis.hdel(keys.QUOTES, "binance|BTCUSDT", "coingecko|bitcoin/usd")
    async with app_client(create_app(frozen_settings)) as client:
        for query in ("from=BTC&to=USD", "from=USD&to=BTC", "from=ETH&to=BTC"):
            answer = await client.get(f"/v1/convert?{query}")
            assert answer.status_code == 503, query
            assert answer.headers["retry-after"] == "1"
            assert answer.json()["error"] == "service_unavailable"
            assert answer.json()["directions"] == ["BTC-USD"]
        assert (await client.get("/v1/convert?from=BTC&to=RUB")).status_code == 200


async def test_failover_carries_over_to_convert(
    courses_settings: Settings, simulated: Simulated
) -> None:
    async with app_client(create_app(courses_settings)) as client:
        await eventually(
            lambda: client.get("/v1/convert?from=BTC&to=USD"),
            lambda r: r.status_code == 200 and r.json()["source"] == "binance",
        )
        simulated.upstreams.binance.set_mode("silent")
        await eventually(
            lambda: client.get("/v1/convert?from=BTC&to=USD"),
            lambda r: r.status_code == 200 and r.json()["source"] == "coingecko",
            timeout_s=courses_settings.stale_after_s + 5,
        )
        await eventually(lambda: client.get("/v1/courses"), complete_from("coingecko"))
