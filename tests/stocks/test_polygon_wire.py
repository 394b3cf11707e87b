"""Built to Polygon's protocol, not to our simulator: quirks of other implementations."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import msgspec
import pytest
from litestar import Litestar, MediaType, Request, Response, get

from ratesvc_sim.polygon import PolygonSimulator
from stocks.conftest import API_KEY, ServeStocks
from stocks.helpers import all_pages, upstream_bars
from support.servers import serve_app

# A second page whose next_url names another host and Polygon's own path (no /quirky prefix).
FIRST_PAGE = (
    b'{"ticker":"QRK","queryCount":2,"resultsCount":2,"adjusted":true,"results":['
    b'{"v":7.0790813e+07,"vw":1.469,"o":1.5032,"c":1.4604,"h":1.5064,"l":1.4489,'
    b'"t":1112331600000,"n":82132},'
    b'{"v":5.78172308E8,"o":1.4639,"c":1.4675,"h":1.4754,"l":1.4343,"t":1.1125872E12}],'
    b'"status":"DELAYED","request_id":"12afda77aab3b1936c5fb6ef4241ae42",'
    b'"next_url":"https://api.example.invalid:443:443/v2/aggs/ticker/QRK/range/1/day/'
    b'1112590000000/2005-04-30?cursor=bGltaXQ9MiZzb3J0PWFzYw"}'
)
SECOND_PAGE = (
    b'{"ticker":"QRK","queryCount":1,"resultsCount":1,"adjusted":true,"results":['
    b'{"v":1,"vw":2,"o":3,"c":4,"h":5,"l":1,"t":1112673600000,"n":1.0}],'
    b'"status":"DELAYED","request_id":"x"}'
)
EMPTY = b'{"ticker":"QRK","queryCount":0,"resultsCount":0,"adjusted":true,"status":"OK"}'


class Quirky:
    def __init__(self) -> None:
        self.seen: list[tuple[str, str, str | None]] = []

    def app(self) -> Litestar:
        quirky = self

        @get("/quirky/v2/aggs/ticker/{rest:path}", media_type=MediaType.JSON)
        async def aggs(request: Request[Any, Any, Any], rest: str) -> Response[bytes]:
            auth = request.headers.get("authorization")
            quirky.seen.append((request.url.path, request.url.query, auth))
            if auth != f"Bearer {API_KEY}":
                return Response(b"<html>401</html>", status_code=401, media_type=MediaType.HTML)
            if "cursor" in request.query_params:
                return Response(SECOND_PAGE)
            if "/2000-01-01/" in rest:  # the decade of day bars holding 2005
                return Response(FIRST_PAGE)
            return Response(EMPTY)

        return Litestar([aggs], openapi_config=None, logging_config=None)


@pytest.fixture
async def quirky_client(
    serve_stocks: ServeStocks,
) -> AsyncIterator[tuple[httpx.AsyncClient, Quirky]]:
    quirky = Quirky()
    async with serve_app(quirky.app()) as base, serve_stocks(polygon_url=f"{base}/quirky") as c:
        yield c, quirky


async def test_other_number_forms_missing_fields_and_foreign_next_url(
    quirky_client: tuple[httpx.AsyncClient, Quirky],
) -> None:
    client, quirky = quirky_client

    response = await client.get("/v2/aggs/ticker/QRK/range/1/day/2005-04-01/2005-04-30")

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "DELAYED"
    assert [bar["t"] for bar in body["results"]] == [1112331600000, 1112587200000, 1112673600000]
    assert body["results"][0]["v"] == 70790813.0
    assert "vw" not in body["results"][1]  # optional fields stay optional
    assert body["results"][2]["n"] == 1
    # The next page went to our configured base with the cursor, and the key again.
    [first, second] = quirky.seen
    assert second[0] == "/quirky/v2/aggs/ticker/QRK/range/1/day/1112590000000/2005-04-30"
    assert second[1] == "cursor=bGltaXQ9MiZzb3J0PWFzYw"
    assert first[2] == second[2] == f"Bearer {API_KEY}"


async def test_answer_without_results_or_count_is_empty(
    quirky_client: tuple[httpx.AsyncClient, Quirky],
) -> None:
    client, _ = quirky_client

    response = await client.get("/v1/stocks/aggs/QRK/range/1/day/2006-01-01/2006-01-31")

    assert response.status_code == 200
    assert response.json()["resultsCount"] == 0


async def test_upstream_pages_are_followed_with_the_key(
    serve_stocks: ServeStocks, polygon: PolygonSimulator, polygon_url: str
) -> None:
    polygon.max_page = 200
    polygon.next_url_host = "https://api.massive.com"
    path = "/v1/stocks/aggs/AAPL/range/1/hour/2024-01-01/2024-01-31"
    async with serve_stocks() as client:
        bars, _ = await all_pages(client, path, {"limit": "50000"})

    polygon.next_url_host = None
    theirs = await upstream_bars(
        polygon_url, "/v2/aggs/ticker/AAPL/range/1/hour/2024-01-01/2024-01-31", {}
    )
    assert bars == theirs
    assert len(polygon.calls) > 10  # a year of hour bars (read-ahead) in pages of 200
    assert all(call.api_key == API_KEY for call in polygon.calls)
    assert all(call.status == 200 for call in polygon.calls)


def test_retry_after_as_http_date() -> None:
    from ratesvc.stocks.upstream import parse_retry_after

    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0
    assert parse_retry_after("12") == 12.0
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None


def test_simulator_wire_shape_keeps_polygons_key_order() -> None:
    sim = PolygonSimulator()
    bars = sim.bars("AAPL", 1, "day", 1704085200000, 1704430800000)
    assert list(bars[0]) == ["v", "vw", "o", "c", "h", "l", "t", "n"]
    assert msgspec.json.encode(bars)  # plain JSON types only
