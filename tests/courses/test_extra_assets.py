"""RATESVC_EXTRA_ASSETS: parsing, and extra assets end to end against the simulators."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest
from structlog.testing import capture_logs

from ratesvc.app import create_app
from ratesvc.config import Settings, SettingsError, load_settings
from ratesvc.courses import directions
from support.apps import app_client
from support.processes import serve_refusing_to_start
from support.servers import eventually, serve_app

from .conftest import Simulated

EXTRA = "SOL=solana:SOLUSDT, xrp = Ripple:xrpusdt ,"
STANDARD = [d.name for d in directions.STANDARD]
WITH_EXTRA = [*STANDARD, "SOL-USD", "SOL-RUB", "XRP-USD", "XRP-RUB"]


@pytest.fixture(autouse=True)
def _standard_table_afterwards() -> Iterator[None]:
    yield
    directions.configure(())


def test_entries_are_parsed_with_odd_case_and_spaces() -> None:
    settings = load_settings({"RATESVC_EXTRA_ASSETS": EXTRA}, env_file=None)
    assert [(a.asset, a.coingecko_id, a.binance_symbol) for a in settings.extra_assets_parsed] == [
        ("SOL", "solana", "SOLUSDT"),
        ("XRP", "ripple", "XRPUSDT"),
    ]
    assert load_settings({"RATESVC_EXTRA_ASSETS": ""}, env_file=None).extra_assets_parsed == ()


@pytest.mark.parametrize(
    ("value", "entry"),
    [
        ("SOL=solana", "SOL=solana"),
        ("SOL:solana:SOLUSDT", "SOL:solana:SOLUSDT"),
        ("SOL=solana:SOLUSDT,=ripple:XRPUSDT", "=ripple:XRPUSDT"),
        ("SOL=:SOLUSDT", "SOL=:SOLUSDT"),
        ("SOL=solana:", "SOL=solana:"),
        ("SOL-X=solana:SOLUSDT", "SOL-X=solana:SOLUSDT"),
        ("SOL=sol ana:SOLUSDT", "SOL=sol ana:SOLUSDT"),
        ("SOL=solana:SOL/USDT", "SOL=solana:SOL/USDT"),
        ("SOL=solana:SOLUSDT,sol=solana2:SOLUSDC", "sol=solana2:SOLUSDC"),
        ("BTC=bitcoin:BTCUSDT", "BTC=bitcoin:BTCUSDT"),
        ("RUB=rouble:RUBUSDT", "RUB=rouble:RUBUSDT"),
    ],
)
def test_a_bad_entry_is_named(value: str, entry: str) -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings({"RATESVC_EXTRA_ASSETS": value}, env_file=None)
    message = str(caught.value)
    assert "RATESVC_EXTRA_ASSETS" in message
    assert f"entry {entry!r}" in message
    assert "\n" not in message


def test_serve_stops_with_one_line_naming_the_entry(tmp_path: Path) -> None:
    environment = {"RATESVC_EXTRA_ASSETS": "SOL=solana:SOLUSDT,SOL=x:Y2"}
    lines = serve_refusing_to_start(environment, tmp_path)
    assert len(lines) == 1, lines
    assert "RATESVC_EXTRA_ASSETS" in lines[0]
    assert "'SOL=x:Y2'" in lines[0]


def _directions(response: httpx.Response) -> list[str]:
    if response.status_code != 200:
        return []
    return [c["direction"] for c in response.json()["courses"]]


async def test_extra_assets_end_to_end(courses_settings: Settings) -> None:
    settings = msgspec.structs.replace(courses_settings, extra_assets=EXTRA)
    # It reads the stream too, which needs a server: an in-process transport returns whole bodies.
    async with (
        serve_app(create_app(settings)) as base,
        httpx.AsyncClient(base_url=base) as client,
    ):
        response = await eventually(
            lambda: client.get("/v1/courses"),
            lambda r: _directions(r) == WITH_EXTRA and r.json()["exchanger"] == "binance",
        )
        rows = {c["direction"]: c for c in response.json()["courses"]}
        assert "legs" not in rows["SOL-USD"]
        assert rows["XRP-RUB"]["legs"] == [
            "binance:XRPUSDT",
            "coingecko:tether/rub",
            "coingecko:tether/usd",
        ]
        assert 80 < rows["SOL-RUB"]["value"] / rows["SOL-USD"]["value"] < 105

        await eventually(
            lambda: client.get("/v1/courses", params={"exchanger": "coingecko"}),
            lambda r: _directions(r) == WITH_EXTRA,
        )
        picked = await client.get("/v1/courses", params={"direction": ["xrp-rub, SOL-USD"]})
        assert _directions(picked) == ["SOL-USD", "XRP-RUB"]
        unknown = await client.get("/v1/courses", params={"direction": "DOGE-USD"})
        assert unknown.status_code == 400
        assert unknown.json()["valid"] == WITH_EXTRA

        converted = await client.get(
            "/v1/convert", params={"from": "xrp", "to": "RUB", "amount": "2"}
        )
        assert converted.status_code == 200, converted.text
        assert (converted.json()["from"], converted.json()["to"]) == ("XRP", "RUB")
        assert converted.json()["result"] > 0

        history = await eventually(
            lambda: client.get("/v1/courses/history", params={"direction": "sol-usd"}),
            lambda r: r.status_code == 200 and bool(r.json()["points"]),
        )
        assert history.json()["direction"] == "SOL-USD"

        first: dict[str, Any] = {}
        async with client.stream(
            "GET", "/v1/courses/stream", params={"direction": "XRP-USD"}, timeout=10
        ) as stream:
            async for line in stream.aiter_lines():
                if line.startswith("data:"):
                    first = json.loads(line.removeprefix("data:"))
                    break
        assert [c["direction"] for c in first["courses"]] == ["XRP-USD"]


async def test_a_symbol_not_trading_drops_binance_for_that_asset(
    courses_settings: Settings, simulated: Simulated
) -> None:
    simulated.upstreams.binance.delisted.add("XRPUSDT")
    settings = msgspec.structs.replace(
        courses_settings,
        extra_assets="SOL=solana:SOLUSDT,XRP=ripple:XRPUSDT,DOGE=dogecoin:DOGEUSDT",
    )
    with capture_logs() as logs:
        async with app_client(create_app(settings)) as client:

            def sources(response: httpx.Response) -> dict[str, str]:
                if response.status_code != 200:
                    return {}
                return {c["direction"]: c["source"] for c in response.json()["courses"]}

            response = await eventually(
                lambda: client.get("/v1/courses"),
                lambda r: sources(r).get("SOL-USD") == "binance" and "XRP-USD" in sources(r),
            )
            # No binance market: XRP is priced by CoinGecko alone.
            assert sources(response)["XRP-USD"] == "coingecko"
            assert sources(response)["XRP-RUB"] == "coingecko"
            binance = await client.get("/v1/courses", params={"exchanger": "binance"})
            assert "XRP-USD" in binance.json()["missing"]
    dropped = [e for e in logs if e["event"] == "symbol_not_trading"]
    assert sorted((e["symbol"], e["entry"], e["log_level"]) for e in dropped) == [
        ("DOGEUSDT", "DOGE=dogecoin:DOGEUSDT", "warning"),
        ("XRPUSDT", "XRP=ripple:XRPUSDT", "warning"),
    ]
