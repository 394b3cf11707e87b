"""No configured key in logs, answers, metrics, errors or the OpenAPI document."""

from __future__ import annotations

import io

import msgspec

from ratesvc.app import create_app
from ratesvc.config import Settings
from support.apps import app_client
from support.servers import eventually

from .conftest import Simulated

COINGECKO_KEY = "CG-secret-9f2e7d41aa"
POLYGON_KEY = "pk_secret_1c0ffee55b"
STOCKS = "/v1/stocks/aggs/AAPL/range/1/day/2024-01-02/2024-01-31"


async def test_keys_appear_nowhere(
    courses_settings: Settings, simulated: Simulated, captured_logs: io.StringIO
) -> None:
    settings = msgspec.structs.replace(
        courses_settings,
        coingecko_api_key=COINGECKO_KEY,
        polygon_api_key=POLYGON_KEY,
        polygon_url="http://127.0.0.1:9/polygon",  # refused: the failure is logged and answered
    )
    simulated.upstreams.coingecko.set_mode("html")  # its failures are logged too
    async with app_client(create_app(settings)) as client:
        await eventually(lambda: client.get("/v1/courses"), lambda r: r.status_code == 200)
        answers = [
            await client.get(path)
            for path in (
                "/v1/courses",
                "/v1/courses?exchanger=coingecko",
                "/v1/courses?direction=nope",
                STOCKS,
                "/v1/stats/login",
                "/v1/ready",
                "/metrics",
                "/docs/openapi.json",
                "/docs",
                "/v1/missing",
            )
        ]
        answers.append(await client.post("/v1/events", content=b"{not json"))
        await eventually(lambda: _logged(captured_logs, "poll_failed"))
    assert answers[3].status_code == 502
    for answer in answers:
        for key in (COINGECKO_KEY, POLYGON_KEY):
            assert key not in answer.text, answer.request.url
            assert key not in str(answer.headers)
    logs = captured_logs.getvalue()
    assert "polygon_call_failed" in logs
    assert COINGECKO_KEY not in logs
    assert POLYGON_KEY not in logs


async def _logged(stream: io.StringIO, event: str) -> bool:
    return f'"{event}"' in stream.getvalue()
