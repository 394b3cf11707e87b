"""A seeded random walk of the prices both exchange simulators quote, so they agree."""

from __future__ import annotations

import math
import random
from decimal import Decimal

# Starting prices, in USDT on Binance and in USD/RUB on CoinGecko.
_START = {
    "BTCUSDT": 67_000.0,
    "ETHUSDT": 3_500.0,
    "USDCUSDT": 1.0002,
    "SOLUSDT": 150.0,
    "XRPUSDT": 0.52,
}
_USD_RUB = 92.5
_VOLATILITY = {"USDCUSDT": 0.00002}  # a stablecoin barely moves


class Market:
    def __init__(self, seed: int = 1) -> None:
        self._random = random.Random(seed)
        self.prices = dict(_START)
        self.usd_rub = _USD_RUB
        self.pinned: set[str] = set()
        """Symbols set by hand; the walk leaves them where they were put."""

    def step(self) -> None:
        """Move every price one step of a geometric random walk."""
        for symbol, price in self.prices.items():
            if symbol in self.pinned:
                continue
            sigma = _VOLATILITY.get(symbol, 0.0005)
            self.prices[symbol] = price * math.exp(self._random.gauss(0.0, sigma))
        self.usd_rub *= math.exp(self._random.gauss(0.0, 0.0002))

    def binance_price(self, symbol: str) -> str | None:
        """Binance prints prices as strings with 8 decimals."""
        price = self.prices.get(symbol.upper())
        return None if price is None else f"{price:.8f}"

    def coingecko_price(self, coin_id: str, currency: str) -> float | None:
        usd = {
            "bitcoin": self.prices["BTCUSDT"],
            "ethereum": self.prices["ETHUSDT"],
            "tether": 1 / self.prices["USDCUSDT"],
            "usd-coin": 1.0,
            "solana": self.prices["SOLUSDT"],
            "ripple": self.prices["XRPUSDT"],
        }.get(coin_id)
        if usd is None:
            return None
        if currency == "usd":
            return usd
        if currency == "rub":
            return usd * self.usd_rub
        return None

    def set_price(self, symbol: str, price: float) -> None:
        self.prices[symbol.upper()] = price
        self.pinned.add(symbol.upper())

    @staticmethod
    def as_decimal(text: str) -> Decimal:
        return Decimal(text)
