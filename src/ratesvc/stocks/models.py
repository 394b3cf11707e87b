"""Wire and domain types of the stocks feature.

``Bar`` keeps Polygon's own field names so that what is cached and what is
served are byte-for-byte the shape a Polygon client expects.
"""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec
from msgspec import UNSET, UnsetType

from ratesvc.stocks.timegrid import Timespan

CacheStatus = Literal["HIT", "MISS", "PARTIAL", "STALE", "COALESCED"]


class Bar(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True, gc=False):
    """One aggregate bar, fields in Polygon's order; ``t`` is the bar's start (ms).

    Untracked by the garbage collector (it holds only numbers): answers decode
    thousands of them, which would otherwise trigger collections mid-request.
    """

    v: float
    vw: float | UnsetType = UNSET
    o: float
    c: float
    h: float
    l: float  # noqa: E741 - Polygon's name for the low
    t: int
    n: int | UnsetType = UNSET
    otc: bool | UnsetType = UNSET


Price = Annotated[float, msgspec.Meta(gt=0)]
"""A bar's price: a page with a zero or negative one is refused, never cached."""
Volume = Annotated[float, msgspec.Meta(ge=0)]


class PolygonWireBar(msgspec.Struct, kw_only=True, gc=False):
    """A bar as Polygon sends it: any JSON number form is accepted (``7.0790813e+07``)."""

    v: Volume
    vw: Price | UnsetType = UNSET
    o: Price
    c: Price
    h: Price
    l: Price  # noqa: E741 - Polygon's name for the low
    t: int | float
    n: int | float | UnsetType = UNSET
    otc: bool | UnsetType = UNSET

    def to_bar(self) -> Bar:
        return Bar(
            v=self.v,
            vw=self.vw,
            o=self.o,
            c=self.c,
            h=self.h,
            l=self.l,
            t=int(self.t),
            n=UNSET if isinstance(self.n, UnsetType) else int(self.n),
            otc=self.otc if self.otc is True else UNSET,
        )


class PolygonAggsPage(msgspec.Struct, kw_only=True):
    """The parts of Polygon's aggregates answer the proxy uses; the rest is ignored."""

    status: str = "OK"
    results: list[PolygonWireBar] | None = None
    next_url: str | None = None


class PolygonErrorBody(msgspec.Struct, kw_only=True):
    status: str = ""
    error: str | None = None
    message: str | None = None


class SeriesKey(msgspec.Struct, frozen=True):
    """What a cached bar depends on besides time (``sort`` and ``limit`` are applied locally)."""

    ticker: str
    multiplier: int
    timespan: Timespan
    adjusted: bool

    @property
    def id(self) -> str:
        """Stable text form, also used inside Redis key names; ``|`` never occurs in a ticker."""
        return f"{self.ticker}|{self.multiplier}|{self.timespan}|{'a' if self.adjusted else 'u'}"

    @classmethod
    def from_id(cls, text: str) -> SeriesKey:
        ticker, multiplier, timespan, adjusted = text.split("|")
        return msgspec.convert(
            {
                "ticker": ticker,
                "multiplier": int(multiplier),
                "timespan": timespan,
                "adjusted": adjusted == "a",
            },
            cls,
        )


class AggsResponse(msgspec.Struct, kw_only=True, omit_defaults=True):
    """Polygon's aggregates answer; ``results`` is left out when empty, as Polygon does."""

    ticker: str
    queryCount: int  # noqa: N815 - Polygon's field name
    resultsCount: int  # noqa: N815 - Polygon's field name
    adjusted: bool
    results: list[Bar] | UnsetType = UNSET
    status: str
    request_id: str
    count: int
    next_url: str | UnsetType = UNSET
