"""The directions ratesvc quotes and how each source prices them.

One table: adding SOL-USD is one line, ``Direction("SOL-USD", "solana", "SOLUSDT")``.

Binance has no USD fiat markets and no RUB markets since 2024, so:
- X-USD on binance is the X/USDT market, USDT taken as USD (the deepest markets);
- USDT-USD on binance is the inverse of USDC/USDT (USDC taken as USD), not a constant 1.0;
- X-RUB on binance is a cross rate: X-USD (binance) x USD-RUB, where USD-RUB is
  CoinGecko's tether/rub divided by tether/usd; it is labelled derived and lists its legs.
USDT on TRC-20 and ERC-20 is one asset with one price (CoinGecko id ``tether``),
so both USDT directions carry the same value.
"""

from __future__ import annotations

from typing import NamedTuple


class Direction(NamedTuple):
    name: str
    """``ASSET-QUOTE`` as clients send it, e.g. ``BTC-RUB``."""
    coingecko_id: str
    binance_symbol: str
    """Binance market giving the asset's USD price (USDT or USDC quoted)."""
    binance_invert: bool = False
    """The market quotes the other way round (USDC/USDT prices USDC, we want USDT)."""

    @property
    def quote(self) -> str:
        return self.name.rsplit("-", 1)[1]


DIRECTIONS: tuple[Direction, ...] = (
    Direction("BTC-USD", "bitcoin", "BTCUSDT"),
    Direction("BTC-RUB", "bitcoin", "BTCUSDT"),
    Direction("ETH-USD", "ethereum", "ETHUSDT"),
    Direction("ETH-RUB", "ethereum", "ETHUSDT"),
    Direction("USDTTRC-USD", "tether", "USDCUSDT", binance_invert=True),
    Direction("USDTTRC-RUB", "tether", "USDCUSDT", binance_invert=True),
    Direction("USDTERC-USD", "tether", "USDCUSDT", binance_invert=True),
    Direction("USDTERC-RUB", "tether", "USDCUSDT", binance_invert=True),
)

SOURCES = ("binance", "coingecko")
"""In order of preference for the default answer."""
QUOTES = ("USD", "RUB")
USD_RUB_LEGS = ("tether/rub", "tether/usd")
"""CoinGecko markets whose ratio gives USD-RUB for binance cross rates."""

BY_NAME = {d.name: d for d in DIRECTIONS}
assert all(d.quote in QUOTES for d in DIRECTIONS), "every direction quotes USD or RUB"


def binance_symbols() -> list[str]:
    return sorted({d.binance_symbol for d in DIRECTIONS})


def coingecko_ids() -> list[str]:
    return sorted({d.coingecko_id for d in DIRECTIONS} | {"tether"})


def coingecko_currencies() -> list[str]:
    return sorted({q.lower() for q in QUOTES})
