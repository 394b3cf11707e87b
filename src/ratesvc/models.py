"""Domain types that cross the update queue.  Wire types never get past the parsers."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

import msgspec


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
