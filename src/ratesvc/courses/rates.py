"""Pure pricing: latest quotes -> the rate of each direction from each source, with freshness."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation

from ratesvc.courses.directions import DIRECTIONS, USD_RUB_LEGS, Direction
from ratesvc.models import Quote

_PLACES = Decimal("1e-8")


@dataclass(frozen=True)
class Freshness:
    """How long a quote of each source stays fresh."""

    binance_s: float
    coingecko_s: float

    def limit(self, source: str) -> timedelta:
        return timedelta(seconds=self.binance_s if source == "binance" else self.coingecko_s)


@dataclass(frozen=True)
class Rate:
    direction: str
    source: str
    value: Decimal
    updated_at: datetime
    """The time of the oldest quote it was computed from."""
    fresh_until: datetime
    legs: tuple[str, ...] | None = None

    def is_fresh(self, now: datetime) -> bool:
        return now <= self.fresh_until


def tidy(value: Decimal) -> Decimal:
    """Eight decimals at most, no trailing zeros, never exponent notation."""
    rounded = value.quantize(_PLACES, rounding=ROUND_HALF_EVEN)
    text = format(rounded, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return Decimal(text)


def compute_rates(
    quotes: Mapping[str, Quote], freshness: Freshness, directions: Iterable[Direction] = DIRECTIONS
) -> list[Rate]:
    """Every (direction, source) rate that the quotes allow; freshness is judged by the caller."""
    rates = []
    for direction in directions:
        for rate in (
            _coingecko(direction, quotes, freshness),
            _binance(direction, quotes, freshness),
        ):
            if rate is not None:
                rates.append(rate)
    return rates


def _fresh_until(quotes: Iterable[Quote], freshness: Freshness) -> datetime:
    return min(q.observed_at + freshness.limit(q.source) for q in quotes)


def _coingecko(
    direction: Direction, quotes: Mapping[str, Quote], freshness: Freshness
) -> Rate | None:
    quote = quotes.get(f"coingecko|{direction.coingecko_id}/{direction.quote.lower()}")
    if quote is None:
        return None
    return Rate(
        direction=direction.name,
        source="coingecko",
        value=tidy(quote.value),
        updated_at=quote.observed_at,
        fresh_until=_fresh_until([quote], freshness),
    )


def _binance(
    direction: Direction, quotes: Mapping[str, Quote], freshness: Freshness
) -> Rate | None:
    market = quotes.get(f"binance|{direction.binance_symbol}")
    if market is None:
        return None
    try:
        usd = Decimal(1) / market.value if direction.binance_invert else market.value
    except (InvalidOperation, ZeroDivisionError):
        return None
    used = [market]
    legs: tuple[str, ...] | None = (
        (f"binance:{direction.binance_symbol}",) if direction.binance_invert else None
    )
    value = usd
    if direction.quote == "RUB":
        rub, usd_leg = (quotes.get(f"coingecko|{m}") for m in USD_RUB_LEGS)
        if rub is None or usd_leg is None:
            return None
        value = usd * rub.value / usd_leg.value
        used += [rub, usd_leg]
        legs = (f"binance:{direction.binance_symbol}", *(f"coingecko:{m}" for m in USD_RUB_LEGS))
    return Rate(
        direction=direction.name,
        source="binance",
        value=tidy(value),
        updated_at=min(q.observed_at for q in used),
        fresh_until=_fresh_until(used, freshness),
        legs=legs,
    )
