"""/v1/courses/stream?direction=: only those directions, only when they change."""

from __future__ import annotations

import asyncio
import itertools
import json
from typing import Any

import httpx

from ratesvc.app import create_app
from ratesvc.config import Settings
from ratesvc.courses.stream import cut
from support.servers import eventually, serve_app

from .conftest import Simulated
from .test_courses_api import complete_from

DEFAULT = (
    b'{"exchanger":"mixed","courses":['
    b'{"direction":"BTC-USD","value":1,"source":"binance","updated_at":"2026-12-01T00:00:00Z"},'
    b'{"direction":"ETH-USD","value":2,"source":"coingecko","updated_at":"2026-12-01T00:00:00Z"}'
    b'],"missing":["USDTTRC-USD"]}'
)


def test_cut_keeps_the_rules_of_the_filtered_answer() -> None:
    only_btc = json.loads(cut(DEFAULT, ("BTC-USD",), "omit") or b"")
    assert only_btc == {"exchanger": "binance", "courses": [json.loads(DEFAULT)["courses"][0]]}
    with_missing = json.loads(cut(DEFAULT, ("ETH-USD", "USDTTRC-USD"), "omit") or b"")
    assert with_missing["missing"] == ["USDTTRC-USD"]
    assert with_missing["exchanger"] == "coingecko"
    failing = json.loads(cut(DEFAULT, ("ETH-USD", "USDTTRC-USD"), "fail") or b"")
    assert failing["error"] == "service_unavailable"
    assert failing["directions"] == ["USDTTRC-USD"]
    nothing = json.loads(cut(DEFAULT, ("USDTTRC-USD",), "omit") or b"")
    assert nothing["directions"] == ["USDTTRC-USD"]
    # A 503 default answer has no rows to cut from: the caller renders instead.
    assert (
        cut(b'{"error":"service_unavailable","detail":"x","directions":[]}', ("BTC-USD",), "omit")
        is None
    )


async def _events(stream: httpx.Response) -> Any:
    async for line in stream.aiter_lines():
        if line.startswith("data:"):
            yield json.loads(line.removeprefix("data:"))


async def test_stream_filter_sends_only_those_directions(
    courses_settings: Settings, simulated: Simulated
) -> None:
    async with (
        serve_app(create_app(courses_settings)) as base,
        httpx.AsyncClient(base_url=base) as client,
    ):
        await eventually(lambda: client.get("/v1/courses"), complete_from("binance"))
        bad = await client.get("/v1/courses/stream", params={"direction": "BTC-EUR"})
        assert bad.status_code == 400
        assert bad.json()["detail"] == "unknown direction: BTC-EUR"
        params = {"direction": ["eth-usd, BTC-USD", " btc-usd "]}
        seen: list[dict[str, Any]] = []
        async with client.stream("GET", "/v1/courses/stream", params=params, timeout=10) as stream:
            async with asyncio.timeout(10):
                async for event in _events(stream):
                    seen.append(event)
                    if len(seen) == 1:
                        simulated.upstreams.market.set_price("ETHUSDT", 4321.5)
                    rows = {c["direction"]: c["value"] for c in event["courses"]}
                    if rows.get("ETH-USD") == 4321.5:
                        break
        assert len(seen) >= 2
        for event in seen:
            assert [c["direction"] for c in event["courses"]] == ["BTC-USD", "ETH-USD"]
        bodies = [json.dumps(e, sort_keys=True) for e in seen]
        assert all(a != b for a, b in itertools.pairwise(bodies))  # only changes

        # An empty filter is no filter.
        async with client.stream(
            "GET", "/v1/courses/stream", params={"direction": ""}, timeout=10
        ) as stream:
            first = await anext(_events(stream))
        assert len(first["courses"]) == 8
