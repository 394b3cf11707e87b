"""One answer per route: the raw ASGI layer and the documented handler give the same bytes.

Both apps run on real sockets over the same Redis holding fixed prices, so
every contract case of /v1/courses and /v1/convert must come back identical
from the two forms of the route: status, headers and body.
"""

from __future__ import annotations

import json

import httpx
import pytest
from redis.asyncio import Redis

from ratesvc.app import create_app
from ratesvc.config import Settings
from ratesvc.courses import keys
from ratesvc.courses.directions import DIRECTIONS
from ratesvc.courses.plugin import CoursesPlugin
from support.apps import app_client
from support.servers import serve_app

NAMES = [d.name for d in DIRECTIONS]
EIGHT_ODD = "direction=usdterc-rub,Eth-Usd&direction=BTC-rub,usdttrc-usd,ETH-RUB&direction=btc-usd,USDTTRC-RUB,usdterc-usd"

CASES = [
    "/v1/courses",
    "/v1/courses?exchanger=binance",
    "/v1/courses?exchanger=CoinGecko",
    "/v1/courses?direction=BTC-USD",
    "/v1/courses?direction=eth-rub,BTC-USD&direction=USDTTRC-USD&direction=BTC-USD",
    f"/v1/courses?{EIGHT_ODD}",
    f"/v1/courses?{EIGHT_ODD}&exchanger=coingecko",
    "/v1/courses?direction=",
    "/v1/courses?exchanger=",
    "/v1/courses?direction=&exchanger=",
    "/v1/courses?direction=ETH-RUB",  # no fresh rate: 503
    "/v1/courses?direction=ETH-RUB&exchanger=coingecko",  # none from that source: 503
    "/v1/courses?direction=ETH-RUB,BTC-USD",  # 200, ETH-RUB under `missing`
    "/v1/courses?direction=DOGE-USD",
    "/v1/courses?exchanger=kraken",
    "/v1/courses?exchanger=binance&exchanger=coingecko",
    "/v1/convert?from=BTC&to=RUB&amount=0.5",
    "/v1/convert?from=rub&to=btc&amount=1000",
    "/v1/convert?from=BTC&to=USDTTRC",
    "/v1/convert?from=ETH&to=RUB",  # no fresh rate: 503
    "/v1/convert?from=BTC&to=RUB&amount=-1",
    "/v1/convert?from=BTC&to=RUB&amount=NaN",
    "/v1/convert?from=USD&to=RUB",
    "/v1/convert?to=RUB",
]
PER_SERVER = {"date", "server", "ratelimit-limit", "ratelimit-remaining", "ratelimit-reset"}
"""Set outside the route (uvicorn, the rate limiter of each app), per server and second."""


def comparable(response: httpx.Response) -> tuple[int, list[tuple[str, str]], bytes]:
    headers = sorted((k, v) for k, v in response.headers.items() if k not in PER_SERVER)
    return response.status_code, headers, response.content


@pytest.fixture
async def redis_with_gaps(frozen_settings: Settings, redis: Redis) -> Settings:
    # ETH-RUB has no price anywhere: binance lacks ETH/USDT, CoinGecko ethereum/rub.
    await redis.hdel(keys.QUOTES, "binance|ETHUSDT", "coingecko|ethereum/rub")
    return frozen_settings


async def test_raw_layer_and_handler_answer_byte_for_byte(redis_with_gaps: Settings) -> None:
    handler_only = CoursesPlugin(raw=False)
    async with (
        serve_app(create_app(redis_with_gaps)) as raw_base,
        serve_app(create_app(redis_with_gaps, plugins=[handler_only])) as handler_base,
        httpx.AsyncClient(base_url=raw_base) as raw,
        httpx.AsyncClient(base_url=handler_base) as handler,
    ):
        statuses = set()
        for path in CASES:
            fast, documented = await raw.get(path), await handler.get(path)
            assert comparable(fast) == comparable(documented), path
            statuses.add(fast.status_code)
            if fast.status_code == 200:
                etag = fast.headers["etag"]
                for if_none_match in (etag, f'W/"x", {etag}', "*", '"other"'):
                    headers = {"If-None-Match": if_none_match}
                    fast = await raw.get(path, headers=headers)
                    documented = await handler.get(path, headers=headers)
                    assert comparable(fast) == comparable(documented), (path, if_none_match)
                    statuses.add(fast.status_code)
    assert statuses == {200, 304, 400, 503}


async def test_every_spelling_and_empty_filters(frozen_settings: Settings) -> None:
    async with app_client(create_app(frozen_settings)) as client:
        default = await client.get("/v1/courses")
        assert default.status_code == 200
        assert [r["direction"] for r in default.json()["courses"]] == NAMES
        # An empty filter is no filter: the default answer, byte for byte, ETag included.
        for empty in ("direction=", "exchanger=", "direction=&exchanger=", "direction=,"):
            same = await client.get(f"/v1/courses?{empty}")
            assert (same.status_code, same.content) == (200, default.content), empty
            assert same.headers["etag"] == default.headers["etag"]
        all_eight = await client.get(f"/v1/courses?{EIGHT_ODD}")
        assert all_eight.content == default.content
        # An empty exchanger beside a direction filter leaves the direction filter.
        picked = await client.get("/v1/courses?exchanger=&direction=eth-usd")
        assert [r["direction"] for r in picked.json()["courses"]] == ["ETH-USD"]
        coingecko = await client.get(f"/v1/courses?{EIGHT_ODD}&exchanger=COINGECKO")
        body = coingecko.json()
        assert body["exchanger"] == "coingecko"
        assert [r["direction"] for r in body["courses"]] == NAMES
        assert {r["source"] for r in body["courses"]} == {"coingecko"}
        # Three shapes, however spelled: the default, ETH-USD, and coingecko for all eight.
        metrics = (await client.get("/metrics")).text
        assert "ratesvc_courses_answers_cached 3.0" in metrics


async def test_documented_in_openapi_with_examples(frozen_settings: Settings) -> None:
    async with app_client(create_app(frozen_settings)) as client:
        schema = (await client.get("/docs/openapi.json")).json()
    for path, names in (
        ("/v1/courses", {"exchanger", "direction"}),
        ("/v1/convert", {"from", "to", "amount"}),
    ):
        operation = schema["paths"][path]["get"]
        assert {p["name"] for p in operation["parameters"]} == names
        assert all(p["examples"] for p in operation["parameters"])
        assert set(operation["responses"]) >= {"200", "304", "400", "503"}
        example = next(
            iter(operation["responses"]["200"]["content"]["application/json"]["examples"].values())
        )
        assert json.dumps(example["value"])
    assert "empty value" in schema["paths"]["/v1/courses"]["get"]["description"]
