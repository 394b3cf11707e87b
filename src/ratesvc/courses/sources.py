"""Where quotes come from: the ``Source`` protocol and the registry of sources.

A source is one module (``binance.py``, ``coingecko.py``, or a third
exchange) holding everything ratesvc needs to know of it: its name (the
``exchanger`` value clients send), how long its quotes stay fresh, the
markets it reads for each direction, the rule that prices a direction from
them, and ``run()``, which streams or polls quotes into the pipeline.

The registry is the list of sources in failover order: the default answer
takes each direction from the first source with a fresh rate.  Answers,
``?exchanger=`` values, staleness limits, the lease holder's tasks and the
OpenAPI descriptions are all derived from it, so adding an exchange is adding
a module and naming it in the registry (``CoursesPlugin(sources=...)``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import Protocol

import httpx

from ratesvc.config import Settings
from ratesvc.courses.directions import Direction
from ratesvc.models import Quote

Offer = Callable[[Quote], object]
"""Puts a quote on the pipeline's queue without waiting (``UpdateQueue.offer``)."""


@dataclass(frozen=True, slots=True)
class Priced:
    """A source's price of one direction, before rounding."""

    value: Decimal
    used: tuple[Quote, ...]
    """Every quote the value was computed from: its age and freshness are theirs."""
    legs: tuple[str, ...] | None = None
    """``source:market`` of each input, for a derived rate (shown to clients)."""


class Source(Protocol):
    """One upstream of quotes, with its own staleness, markets and price rule."""

    @property
    def name(self) -> str:
        """Lower case; the ``source`` of its quotes and the ``exchanger`` clients name."""
        ...

    def stale_after_s(self, settings: Settings) -> float:
        """How long one of its quotes stays fresh."""
        ...

    def markets(self, direction: Direction) -> tuple[str, ...]:
        """The quote keys (``source|market``) its rate of ``direction`` is computed from;
        empty when it does not price that direction."""
        ...

    def price(self, direction: Direction, quotes: Mapping[str, Quote]) -> Priced | None:
        """Its rate of ``direction`` from the latest quotes; None when inputs are missing."""
        ...

    async def run(self, settings: Settings, http: httpx.AsyncClient, offer: Offer) -> None:
        """Stream or poll quotes forever (only the exchange-lease holder runs it)."""
        ...


@dataclass(frozen=True)
class Freshness:
    """How long a quote of each source stays fresh (from the registry)."""

    limits_s: Mapping[str, float]

    def limit(self, source: str) -> timedelta:
        # A quote of a source that is not registered (left in Redis by another
        # configuration) is never fresh: no source borrows another's limit.
        return timedelta(seconds=self.limits_s.get(source, 0.0))


class Sources:
    """The registry: sources in failover order, names unique."""

    def __init__(self, sources: Iterable[Source]) -> None:
        self._sources = tuple(sources)
        self.names = tuple(s.name for s in self._sources)
        if len(set(self.names)) != len(self.names):
            raise ValueError(f"source names must be unique: {self.names}")
        self._by_name = dict(zip(self.names, self._sources, strict=True))

    def named(self, name: str) -> Source | None:
        return self._by_name.get(name)

    def freshness(self, settings: Settings) -> Freshness:
        return Freshness({s.name: s.stale_after_s(settings) for s in self._sources})

    def __iter__(self) -> Iterator[Source]:
        return iter(self._sources)

    def __len__(self) -> int:
        return len(self._sources)

    def __repr__(self) -> str:
        return f"Sources{self.names!r}"


def described(names: Sequence[str]) -> str:
    """``binance, then coingecko`` (failover order, for the OpenAPI descriptions)."""
    return ", then ".join(names)
