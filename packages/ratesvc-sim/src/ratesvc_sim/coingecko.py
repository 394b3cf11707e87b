"""CoinGecko ``/simple/price`` simulator: the real shape, 429 with Retry-After over a rate.

Faults for tests and demos: ``rate_limited`` (429 JSON with retry-after),
``error`` (500), ``html`` (a CDN-style HTML error page), ``garbage`` (200 with
a body that is not the documented shape) and ``slow`` (answers after a delay).
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from typing import Any, Literal

from litestar import MediaType, Response, Router, get

from ratesvc_sim.market import Market

Mode = Literal["normal", "rate_limited", "error", "html", "garbage", "slow"]

RATE_LIMIT_BODY = {
    "status": {
        "error_code": 429,
        "error_message": "You've exceeded the Rate Limit. Please visit "
        "https://www.coingecko.com/en/api/pricing to subscribe to our API plans for "
        "higher rate limits.",
    }
}
HTML_PAGE = "<!DOCTYPE html><html><head><title>Access denied | api.coingecko.com used Cloudflare</title></head><body>Error 1015</body></html>"


class CoinGeckoSimulator:
    def __init__(
        self, market: Market, *, calls_per_minute: int = 30, retry_after_s: int = 60
    ) -> None:
        self.market = market
        self.calls_per_minute = calls_per_minute
        self.retry_after_s = retry_after_s
        self.mode: Mode = "normal"
        self.slow_s = 15.0
        self.calls = 0
        self._recent: deque[float] = deque()

    def set_mode(self, mode: Mode) -> None:
        self.mode = mode

    def _over_limit(self) -> bool:
        now = time.monotonic()
        while self._recent and now - self._recent[0] > 60:
            self._recent.popleft()
        self._recent.append(now)
        return len(self._recent) > self.calls_per_minute

    def routes(self) -> Router:
        simulator = self

        @get("/api/v3/simple/price")
        async def simple_price(
            vs_currencies: str | None = None,
            ids: str | None = None,
            include_last_updated_at: bool = False,
        ) -> Response[Any]:
            simulator.calls += 1
            if simulator.mode == "slow":
                await asyncio.sleep(simulator.slow_s)
            if simulator.mode == "rate_limited" or simulator._over_limit():
                return Response(
                    RATE_LIMIT_BODY,
                    status_code=429,
                    headers={"retry-after": str(simulator.retry_after_s)},
                )
            if simulator.mode == "error":
                return Response({"error": "Internal Server Error"}, status_code=500)
            if simulator.mode == "html":
                return Response(HTML_PAGE, status_code=403, media_type=MediaType.HTML)
            if simulator.mode == "garbage":
                return Response({"bitcoin": {"usd": "lots"}, "ethereum": [1, 2]})
            if not vs_currencies:
                return Response({"error": "Missing parameter vs_currencies"}, status_code=400)
            return Response(
                simulator._prices(
                    ids or "", vs_currencies, include_last_updated=include_last_updated_at
                )
            )

        return Router(path="/coingecko", route_handlers=[simple_price])

    def _prices(
        self, ids: str, vs_currencies: str, *, include_last_updated: bool
    ) -> dict[str, Any]:
        body: dict[str, Any] = {}
        currencies = [c.strip().lower() for c in vs_currencies.split(",") if c.strip()]
        for coin in (c.strip().lower() for c in ids.split(",") if c.strip()):
            prices = {
                cur: value
                for cur in currencies
                if (value := self.market.coingecko_price(coin, cur)) is not None
            }
            if prices or self.market.coingecko_price(coin, "usd") is not None:
                entry: dict[str, Any] = dict(prices)
                if include_last_updated:
                    entry["last_updated_at"] = int(time.time())
                body[coin] = entry
        return body
