"""/v1/courses end to end: simulators over real sockets, real Redis and PostgreSQL."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import httpx

from ratesvc.app import create_app
from ratesvc.config import Settings
from ratesvc.courses.directions import DIRECTIONS
from support.apps import app_client
from support.servers import eventually, serve_app

from .conftest import Simulated

ALL = [d.name for d in DIRECTIONS]


def complete_from(source: str) -> Any:
    def accept(response: httpx.Response) -> bool:
        if response.status_code != 200:
            return False
        body = response.json()
        return body["exchanger"] == source and [c["direction"] for c in body["courses"]] == ALL

    return accept


async def both_sources_answer(client: httpx.AsyncClient) -> None:
    """Wait until Binance answers the default shape and CoinGecko its own."""
    await eventually(lambda: client.get("/v1/courses"), complete_from("binance"))
    await eventually(
        lambda: client.get("/v1/courses", params={"exchanger": "coingecko"}),
        complete_from("coingecko"),
    )


async def test_answer_has_the_clients_format(courses_settings: Settings) -> None:
    async with app_client(create_app(courses_settings)) as client:
        response = await eventually(lambda: client.get("/v1/courses"), complete_from("binance"))
    body = response.json()
    assert set(body) == {"exchanger", "courses"}
    for row in body["courses"]:
        assert isinstance(row["value"], float | int)
        assert row["value"] > 0
        assert row["source"] == "binance"
        assert row["updated_at"].endswith("Z")
    by_direction = {row["direction"]: row for row in body["courses"]}
    assert "legs" not in by_direction["BTC-USD"]
    assert by_direction["BTC-RUB"]["legs"] == [
        "binance:BTCUSDT",
        "coingecko:tether/rub",
        "coingecko:tether/usd",
    ]
    # One asset, one price: both USDT networks carry the same value.
    assert by_direction["USDTTRC-USD"]["value"] == by_direction["USDTERC-USD"]["value"]
    assert by_direction["USDTTRC-USD"]["legs"] == ["binance:USDCUSDT"]
    usd_rub = by_direction["BTC-RUB"]["value"] / by_direction["BTC-USD"]["value"]
    assert 80 < usd_rub < 105  # the simulator's USD-RUB walks around 92.5
    assert response.headers["content-type"] == "application/json"
    assert response.headers["cache-control"] == "public, max-age=1, must-revalidate"


async def test_filters_and_their_errors(courses_settings: Settings) -> None:
    async with app_client(create_app(courses_settings)) as client:
        await both_sources_answer(client)
        picked = await client.get(
            "/v1/courses?direction=eth-rub,BTC-USD&direction=USDTTRC-USD&direction=BTC-USD"
        )
        assert picked.status_code == 200
        assert [c["direction"] for c in picked.json()["courses"]] == [
            "BTC-USD",
            "ETH-RUB",
            "USDTTRC-USD",
        ]
        cg = await client.get(
            "/v1/courses", params={"exchanger": "CoinGecko", "direction": "BTC-RUB"}
        )
        assert cg.json()["exchanger"] == "coingecko"
        assert [(c["direction"], c["source"]) for c in cg.json()["courses"]] == [
            ("BTC-RUB", "coingecko")
        ]

        bad_direction = await client.get("/v1/courses", params={"direction": "DOGE-USD"})
        assert bad_direction.status_code == 400
        assert bad_direction.json()["error"] == "bad_request"
        assert "DOGE-USD" in bad_direction.json()["detail"]
        assert bad_direction.json()["valid"] == ALL
        bad_exchanger = await client.get("/v1/courses", params={"exchanger": "kraken"})
        assert bad_exchanger.status_code == 400
        assert bad_exchanger.json()["valid"] == ["binance", "coingecko"]


async def test_a_price_change_is_visible_within_a_second(
    courses_settings: Settings, simulated: Simulated
) -> None:
    async with app_client(create_app(courses_settings)) as client:
        await eventually(lambda: client.get("/v1/courses"), complete_from("binance"))
        simulated.upstreams.market.set_price("BTCUSDT", 12345.678)
        started = time.monotonic()

        def shows_new_price(response: httpx.Response) -> bool:
            rows = response.json().get("courses", []) if response.status_code == 200 else []
            return any(r["direction"] == "BTC-USD" and r["value"] == 12345.678 for r in rows)

        await eventually(lambda: client.get("/v1/courses"), shows_new_price, timeout_s=1.0)
        assert time.monotonic() - started <= 1.0


async def _watch_failover(
    client: httpx.AsyncClient, deadline_s: float, source: str
) -> tuple[float, list[int]]:
    """Poll until the default answer comes from ``source``; return the time taken and statuses."""
    started = time.monotonic()
    statuses: list[int] = []
    while time.monotonic() - started < deadline_s:
        response = await client.get("/v1/courses")
        statuses.append(response.status_code)
        if response.status_code == 200 and response.json()["exchanger"] == source:
            return time.monotonic() - started, statuses
        await asyncio.sleep(0.05)
    raise AssertionError(f"no answer from {source} within {deadline_s}s: {statuses[-5:]}")


async def test_failover_when_binance_goes_silent_and_back(
    courses_settings: Settings, simulated: Simulated
) -> None:
    limit = courses_settings.stale_after_s + 2
    async with app_client(create_app(courses_settings)) as client:
        await both_sources_answer(client)
        simulated.upstreams.binance.set_mode("silent")
        took, statuses = await _watch_failover(client, limit, "coingecko")
        assert all(status < 500 for status in statuses), statuses
        failed_over = (await client.get("/v1/courses")).json()
        assert {c["source"] for c in failed_over["courses"]} == {"coingecko"}

        simulated.upstreams.binance.set_mode("normal")
        _, statuses = await _watch_failover(client, 10, "binance")
        assert all(status < 500 for status in statuses), statuses
    assert took <= limit


async def test_failover_when_binance_drops_and_refuses(
    courses_settings: Settings, simulated: Simulated
) -> None:
    limit = courses_settings.stale_after_s + 2
    binance = simulated.upstreams.binance
    async with app_client(create_app(courses_settings)) as client:
        await both_sources_answer(client)
        binance.set_mode("refuse")
        await binance.drop_all()
        _, statuses = await _watch_failover(client, limit, "coingecko")
        assert all(status < 500 for status in statuses), statuses
        assert binance.handshakes_refused >= 1  # it kept trying, with backoff

        accepted = binance.connections_accepted
        binance.set_mode("normal")
        await _watch_failover(client, 10, "binance")
        assert binance.connections_accepted > accepted


async def test_server_shutdown_makes_a_prompt_reconnect(
    courses_settings: Settings, simulated: Simulated
) -> None:
    binance = simulated.upstreams.binance
    async with app_client(create_app(courses_settings)) as client:
        await eventually(lambda: client.get("/v1/courses"), complete_from("binance"))
        accepted = binance.connections_accepted
        await binance.announce_shutdown()

        async def reconnected() -> bool:
            return binance.connections_accepted > accepted

        await eventually(reconnected, timeout_s=3)


async def test_etag_and_304(courses_settings: Settings, simulated: Simulated) -> None:
    async with app_client(create_app(courses_settings)) as client:
        await eventually(lambda: client.get("/v1/courses"), complete_from("binance"))
        # With Binance silent and CoinGecko (the RUB legs) failing, the binance rows stop
        # changing once marked stale: a steady body.
        simulated.upstreams.binance.set_mode("silent")
        simulated.upstreams.coingecko.set_mode("error")

        def all_stale(response: httpx.Response) -> bool:
            rows = response.json()["courses"]
            return len(rows) == len(ALL) and all(r.get("stale") for r in rows)

        params = {"exchanger": "binance"}
        first = await eventually(lambda: client.get("/v1/courses", params=params), all_stale)
        etag = first.headers["etag"]
        assert etag.startswith('"')
        assert not etag.startswith("W/")
        again = await client.get("/v1/courses", params=params)
        assert again.headers["etag"] == etag
        assert again.content == first.content

        cached = await client.get("/v1/courses", params=params, headers={"If-None-Match": etag})
        assert cached.status_code == 304
        assert cached.content == b""
        assert cached.headers["etag"] == etag

        other_shape = await client.get(
            "/v1/courses", params={"exchanger": "binance", "direction": "BTC-USD"}
        )
        assert other_shape.headers["etag"] != etag
        changed = await client.get(
            "/v1/courses", params=params, headers={"If-None-Match": '"something-else"'}
        )
        assert changed.status_code == 200


async def test_no_fresh_source_gives_503_naming_directions(
    courses_settings: Settings, simulated: Simulated
) -> None:
    simulated.upstreams.binance.set_mode("refuse")
    simulated.upstreams.coingecko.set_mode("error")
    async with app_client(create_app(courses_settings)) as client:
        response = await client.get("/v1/courses", params={"direction": "BTC-USD"})
        assert response.status_code == 503
        body = response.json()
        assert body["error"] == "service_unavailable"
        assert body["directions"] == ["BTC-USD"]
        assert response.headers["retry-after"] == "1"


async def test_stream_pushes_changes(courses_settings: Settings, simulated: Simulated) -> None:
    # A streamed answer needs a server: an in-process transport returns whole bodies only.
    async with (
        serve_app(create_app(courses_settings)) as base,
        httpx.AsyncClient(base_url=base) as client,
    ):
        await eventually(lambda: client.get("/v1/courses"), complete_from("binance"))
        async with client.stream("GET", "/v1/courses/stream", timeout=10) as stream:
            assert stream.headers["content-type"].startswith("text/event-stream")
            seen: list[dict[str, Any]] = []
            async with asyncio.timeout(5):
                async for line in stream.aiter_lines():
                    if not line.startswith("data:"):
                        continue
                    seen.append(json.loads(line.removeprefix("data:").strip()))
                    if len(seen) == 1:
                        simulated.upstreams.market.set_price("ETHUSDT", 4321.5)
                    rows = {c["direction"]: c["value"] for c in seen[-1].get("courses", [])}
                    if rows.get("ETH-USD") == 4321.5:
                        break
    assert len(seen) >= 2
