"""Upstream failures become clear JSON answers; the service's key never leaks anywhere."""

from __future__ import annotations

import io
from collections.abc import Awaitable, Callable, Iterator

import httpx
import msgspec
import pytest

from ratesvc.log import configure_logging
from ratesvc_sim.polygon import Body, PolygonSimulator
from stocks.conftest import API_KEY, ServeStocks
from support.servers import eventually

PATH = "/v1/stocks/aggs/NFLX/range/1/day/2023-01-01/2023-03-31"


def assert_clean_error(response: httpx.Response, status: int) -> dict[str, object]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    assert response.headers["X-Cache"] == "MISS"
    body: dict[str, object] = response.json()
    assert set(body) >= {"error", "detail"}
    assert "Traceback" not in response.text
    assert API_KEY not in response.text
    assert API_KEY not in str(response.headers)
    return body


@pytest.mark.parametrize(
    ("status", "body", "ours"),
    [
        (500, "json", 502),
        (502, "html", 502),
        (503, "html", 502),
        (200, "garbage", 502),
        (404, "json", 502),
        (403, "json", 502),
    ],
)
async def test_upstream_failures_map_to_bad_gateway(
    client: httpx.AsyncClient, polygon: PolygonSimulator, status: int, body: Body, ours: int
) -> None:
    polygon.fail_next(status, body=body)

    answer = assert_clean_error(await client.get(PATH), ours)

    assert answer["upstream"] in {"unavailable", "not_entitled"}
    assert polygon.call_count == 1


async def test_rate_limited_upstream_gives_503_with_its_retry_after(
    serve_stocks: ServeStocks, polygon: PolygonSimulator
) -> None:
    polygon.fail_next(429, retry_after=30)
    async with serve_stocks() as client:  # paused for 30 s: not the module's app
        limited = await client.get(PATH)
        paused = await client.get(PATH.replace("NFLX", "AMZN"))

    assert_clean_error(limited, 503)
    assert limited.headers["Retry-After"] == "30"
    # Polygon asked every replica to wait: no call until then, not even for another ticker.
    assert_clean_error(paused, 503)
    assert 25 <= int(paused.headers["Retry-After"]) <= 30
    assert polygon.call_count == 1


async def test_rate_limited_without_retry_after_still_says_when(
    serve_stocks: ServeStocks, polygon: PolygonSimulator
) -> None:
    polygon.fail_next(429)
    async with serve_stocks() as client:  # paused: not the module's app
        limited = await client.get(PATH)

    assert_clean_error(limited, 503)
    assert int(limited.headers["Retry-After"]) >= 1


async def test_slow_upstream_gives_504(
    serve_stocks: ServeStocks, polygon: PolygonSimulator
) -> None:
    polygon.delay_s = 2.0
    async with serve_stocks(polygon_timeout_s=0.2) as client:
        response = await client.get(PATH)

    assert_clean_error(response, 504)
    # The simulator answers (and records the call) 2 s later, after ratesvc gave up:
    # wait for it here, or the call lands in the next test's freshly reset list.
    calls = await eventually(_recorded(polygon), lambda n: n == 1, timeout_s=10.0)
    assert calls == 1


def _recorded(polygon: PolygonSimulator) -> Callable[[], Awaitable[int]]:
    async def count() -> int:
        return len(polygon.calls)

    return count


async def test_unreachable_upstream_gives_502(serve_stocks: ServeStocks) -> None:
    async with serve_stocks(polygon_url="http://127.0.0.1:9/polygon") as client:
        response = await client.get(PATH)

    assert_clean_error(response, 502)


async def test_refused_key_gives_502_without_the_key(
    serve_stocks: ServeStocks, polygon: PolygonSimulator
) -> None:
    wrong = "pk_WRONG_key_value_123"
    async with serve_stocks(polygon_api_key=wrong) as client:
        response = await client.get(PATH)

    body = assert_clean_error(response, 502)
    assert body["upstream"] == "key_refused"
    assert "key" in str(body["detail"])
    assert wrong not in response.text
    assert polygon.calls[0].status == 401


async def test_polygon_rejecting_the_request_is_a_400(
    client: httpx.AsyncClient, polygon: PolygonSimulator
) -> None:
    polygon.fail_next(400)

    response = await client.get(PATH)

    assert_clean_error(response, 400)


async def test_clients_own_token_is_never_forwarded(
    client: httpx.AsyncClient, polygon: PolygonSimulator
) -> None:
    response = await client.get(
        PATH,
        params={"apiKey": "client-query-key"},
        headers={"Authorization": "Bearer client-bearer-token"},
    )

    assert response.status_code == 200
    [call] = polygon.calls
    assert call.authorization == f"Bearer {API_KEY}"
    assert call.api_key == API_KEY
    assert "client" not in msgspec.json.encode(call).decode()


@pytest.fixture
def captured_logs() -> Iterator[io.StringIO]:
    """Every log line of the test, written without the scrubber's help (no secrets given)."""
    stream = io.StringIO()
    configure_logging("DEBUG", stream=stream, json=True)
    yield stream
    configure_logging("DEBUG", json=True)


async def test_key_never_appears_in_responses_metrics_or_logs(
    captured_logs: io.StringIO, serve_stocks: ServeStocks, polygon: PolygonSimulator
) -> None:
    async with serve_stocks() as client:  # the 429 pauses it: not the module's app
        answers = [await client.get(PATH, params={"limit": "5"})]
        for status, body in ((500, "json"), (401, "json"), (429, "html")):
            polygon.fail_next(status, body=body)  # type: ignore[arg-type]
            answers.append(await client.get(PATH.replace("NFLX", f"N{status}")))
        answers.append(await client.get("/metrics"))
        answers.append(await client.get("/v1/ready"))

    assert [a.status_code for a in answers[:4]] == [200, 502, 502, 503]
    assert "next_url" in answers[0].json()
    for answer in answers:
        assert API_KEY not in answer.text
        assert API_KEY not in str(answer.headers)
    logs = captured_logs.getvalue()
    assert "polygon_call_failed" in logs  # the failures were logged ...
    assert API_KEY not in logs  # ... without the key
