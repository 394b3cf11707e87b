"""Bad input is refused with a 400 that says what is wrong, before any upstream call."""

from __future__ import annotations

import httpx
import pytest

from ratesvc_sim.polygon import PolygonSimulator

BASE = "/v1/stocks/aggs"


@pytest.mark.parametrize(
    ("path", "params", "says"),
    [
        ("/AAPL/range/1/fortnight/2024-01-01/2024-01-31", {}, "timespan"),
        ("/AAPL/range/0/day/2024-01-01/2024-01-31", {}, "multiplier"),
        ("/AAPL/range/-3/day/2024-01-01/2024-01-31", {}, "multiplier"),
        ("/AAPL/range/1.5/day/2024-01-01/2024-01-31", {}, "multiplier"),
        ("/AAPL/range/x/day/2024-01-01/2024-01-31", {}, "multiplier"),
        ("/AAPL/range/1/day/2024-02-30/2024-03-31", {}, "not a valid calendar date"),
        ("/AAPL/range/1/day/2024-13-01/2024-12-31", {}, "not a valid calendar date"),
        ("/AAPL/range/1/day/yesterday/2024-01-31", {}, "`from`"),
        ("/AAPL/range/1/day/2024-01-01/2024/01/31", {}, None),
        ("/AAPL/range/1/day/2024-03-01/2024-02-01", {}, "after"),
        ("/AAPL/range/1/day/1709269200000/1706763600000", {}, "after"),
        ("/AAPL/range/1/day/2024-01-01/2024-01-31", {"limit": "0"}, "limit"),
        ("/AAPL/range/1/day/2024-01-01/2024-01-31", {"limit": "50001"}, "limit"),
        ("/AAPL/range/1/day/2024-01-01/2024-01-31", {"limit": "ten"}, "limit"),
        ("/AAPL/range/1/day/2024-01-01/2024-01-31", {"sort": "up"}, "sort"),
        ("/AAPL/range/1/day/2024-01-01/2024-01-31", {"adjusted": "maybe"}, "adjusted"),
        ("/AAPL/range/1/day/2024-01-01/2024-01-31", {"cursor": "abc"}, "cursor"),
        ("/AA%20PL/range/1/day/2024-01-01/2024-01-31", {}, "ticker"),
        ("/AAPL$/range/1/day/2024-01-01/2024-01-31", {}, "ticker"),
        ("/" + "A" * 41 + "/range/1/day/2024-01-01/2024-01-31", {}, "ticker"),
    ],
)
async def test_bad_input_is_a_400_naming_the_problem(
    client: httpx.AsyncClient,
    polygon: PolygonSimulator,
    path: str,
    params: dict[str, str],
    says: str | None,
) -> None:
    response = await client.get(BASE + path, params=params)

    if says is None:  # not even our route: the app's JSON 404
        assert response.status_code == 404
    else:
        assert response.status_code == 400, response.text
        body = response.json()
        assert body["error"] == "bad_request"
        assert says in body["detail"]
    assert response.headers["content-type"].startswith("application/json")
    assert polygon.call_count == 0


async def test_polygon_path_refuses_bad_input_too(
    client: httpx.AsyncClient, polygon: PolygonSimulator
) -> None:
    response = await client.get("/v2/aggs/ticker/AAPL/range/1/days/2024-01-01/2024-01-31")

    assert response.status_code == 400
    assert "timespan" in response.json()["detail"]
    assert polygon.call_count == 0
