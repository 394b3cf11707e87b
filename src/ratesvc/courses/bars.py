"""Per-minute open/high/low/close of every (direction, source) rate: what charts are drawn from.

The drainer hands each batch's quotes to ``MinuteBars.fold``: it keeps the
latest quote of every market (cross rates need legs that did not move in
this batch), prices each direction whose inputs changed, and folds the value
into the bar of that minute.  Only fresh rates are sampled, so a source
that went quiet leaves a gap instead of a flat line of an old price.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

from ratesvc.courses.directions import DIRECTIONS
from ratesvc.courses.quotes_hash import newer_than
from ratesvc.courses.rates import Pricing
from ratesvc.models import Quote

BarKey = tuple[str, str, datetime]
"""(direction, source, minute)."""


@dataclass(frozen=True, slots=True)
class Bar:
    direction: str
    source: str
    minute: datetime
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    open_at: datetime
    """When the first sample of this bar was observed: a later merge keeps the earliest open."""
    close_at: datetime
    samples: int

    @property
    def key(self) -> BarKey:
        return (self.direction, self.source, self.minute)

    def with_sample(self, value: Decimal, at: datetime) -> Bar:
        return Bar(
            self.direction,
            self.source,
            self.minute,
            self.open if at >= self.open_at else value,
            max(self.high, value),
            min(self.low, value),
            self.close if at < self.close_at else value,
            min(self.open_at, at),
            max(self.close_at, at),
            self.samples + 1,
        )


def minute_of(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(second=0, microsecond=0)


class MinuteBars:
    """Turns quotes into samples of direction rates and folds them into minute bars."""

    def __init__(self, pricing: Pricing) -> None:
        self.pricing = pricing
        self.quotes: dict[str, Quote] = {}

    def prime(self, quotes: Mapping[str, Quote]) -> None:
        """Know the last quotes (from Redis at start-up) without sampling them."""
        self.quotes.update(newer_than(quotes.values(), self.quotes))

    def fold(self, newest: Mapping[str, Quote], bars: dict[BarKey, Bar]) -> None:
        """Sample every rate that ``newest`` moved and fold it into ``bars`` (changed in place)."""
        changed: dict[str, datetime] = {}
        for key, quote in newest.items():
            seen = self.quotes.get(key)
            if seen is None or quote.observed_at >= seen.observed_at:
                self.quotes[key] = quote
                changed[key] = quote.observed_at
        if not changed:
            return
        by_direction = {d.name: d for d in DIRECTIONS}
        for rate in self.pricing.rates(self.quotes):
            moved = [
                changed[k]
                for k in self.pricing.markets(by_direction[rate.direction], rate.source)
                if k in changed
            ]
            if not moved:
                continue
            at = max(moved)
            if not rate.is_fresh(at):
                continue
            bar_key = (rate.direction, rate.source, minute_of(at))
            bar = bars.get(bar_key)
            value = rate.value
            bars[bar_key] = (
                Bar(*bar_key, value, value, value, value, at, at, 1)
                if bar is None
                else bar.with_sample(value, at)
            )
