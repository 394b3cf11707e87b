"""Helpers for the stock bar tests: read every page of an answer, ask Polygon directly."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import httpx

from stocks.conftest import API_KEY


async def all_pages(
    client: httpx.AsyncClient, path: str, params: dict[str, str] | None = None, max_pages: int = 200
) -> tuple[list[dict[str, Any]], list[httpx.Response]]:
    """Follow ``next_url`` as Polygon's client does (path and query only, our base URL)."""
    responses = [await client.get(path, params=params)]
    bars: list[dict[str, Any]] = []
    while True:
        response = responses[-1]
        assert response.status_code == 200, response.text
        body = response.json()
        bars.extend(body.get("results", []))
        next_url = body.get("next_url")
        if not next_url:
            return bars, responses
        assert len(responses) < max_pages, "pagination does not end"
        parts = urlsplit(next_url)
        responses.append(await client.get(f"{parts.path}?{parts.query}"))


async def upstream_bars(
    polygon_url: str, path: str, params: dict[str, str]
) -> list[dict[str, Any]]:
    """The same query asked of the simulator directly, every page."""
    bars: list[dict[str, Any]] = []
    headers = {"Authorization": f"Bearer {API_KEY}"}
    async with httpx.AsyncClient(timeout=30, headers=headers) as http:
        response = await http.get(polygon_url + path, params=params)
        while True:
            assert response.status_code == 200, response.text
            body = response.json()
            bars.extend(body.get("results", []))
            if not body.get("next_url"):
                return bars
            response = await http.get(body["next_url"])
