"""Pure pricing: latest quotes -> the rate of each direction from each source, with freshness.

Each source's price rule lives with the source (``sources.py``); this module
applies them all, rounds alike, and dates each rate by its oldest input.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_HALF_EVEN, Decimal

from ratesvc.courses.directions import DIRECTIONS, Direction
from ratesvc.courses.sources import Freshness, Sources
from ratesvc.models import Quote

_PLACES = Decimal("1e-8")


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


class Pricing:
    """The registry's price rules and staleness limits, applied to the latest quotes."""

    def __init__(self, sources: Sources, freshness: Freshness) -> None:
        self.sources = sources
        self.freshness = freshness
        self.order = sources.names
        """Source names in failover order."""

    def rates(
        self, quotes: Mapping[str, Quote], directions: Iterable[Direction] = DIRECTIONS
    ) -> list[Rate]:
        """Every (direction, source) rate that the quotes allow; freshness is judged by the caller."""
        rates = []
        for direction in directions:
            for source in self.sources:
                priced = source.price(direction, quotes)
                if priced is None:
                    continue
                rates.append(
                    Rate(
                        direction=direction.name,
                        source=source.name,
                        value=tidy(priced.value),
                        updated_at=min(q.observed_at for q in priced.used),
                        fresh_until=min(
                            q.observed_at + self.freshness.limit(q.source) for q in priced.used
                        ),
                        legs=priced.legs,
                    )
                )
        return rates

    def markets(self, direction: Direction, source: str) -> tuple[str, ...]:
        """The quote keys the rate of ``direction`` from ``source`` is computed from."""
        found = self.sources.named(source)
        return () if found is None else found.markets(direction)
