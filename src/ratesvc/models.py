"""Domain types that cross the update queue.  Wire types never get past the parsers."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

import msgspec

MAX_PRICE = Decimal("1e12")
"""Far above any market ratesvc carries (BTC-RUB is about 6e6): a larger value is garbage."""


def is_valid_price(value: Decimal) -> bool:
    """Finite, positive and below ``MAX_PRICE``: the only prices ever stored."""
    return value.is_finite() and 0 < value < MAX_PRICE


class Quote(msgspec.Struct, frozen=True, kw_only=True, tag="quote"):
    """One price of one upstream market, e.g. binance BTCUSDT or coingecko bitcoin/usd."""

    source: str
    market: str
    value: Decimal
    observed_at: datetime
    """When the upstream says the price held (UTC)."""

    @property
    def key(self) -> str:
        return f"{self.source}|{self.market}"
