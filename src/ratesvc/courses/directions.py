"""The directions ratesvc quotes and how each source prices them.

One table, asked by everything else (answers, filters, history, conversion,
the stream, the exchange connections).  Its columns are the markets of the
two built-in sources; which sources exist, in what order, and how each
prices a direction is the registry's (``sources.py``).  The standard eight are fixed; more
assets come from ``RATESVC_EXTRA_ASSETS`` (``configure``, called when the
app is built), each adding ``ASSET-USD`` and ``ASSET-RUB`` after the eight.

Binance has no USD fiat markets and no RUB markets since 2024, so:
- X-USD on binance is the X/USDT market, USDT taken as USD (the deepest markets);
- USDT-USD on binance is the inverse of USDC/USDT (USDC taken as USD), not a constant 1.0;
- X-RUB on binance is a cross rate: X-USD (binance) x USD-RUB, where USD-RUB is
  CoinGecko's tether/rub divided by tether/usd; it is labelled derived and lists its legs.
USDT on TRC-20 and ERC-20 is one asset with one price (CoinGecko id ``tether``),
so both USDT directions carry the same value.

``DIRECTIONS``, ``NAMES`` and ``BY_NAME`` are live views: ``configure``
changes them in place, so modules that imported them see the configured
table without being told.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import NamedTuple, overload

from ratesvc.config import ExtraAsset


class Direction(NamedTuple):
    name: str
    """``ASSET-QUOTE`` as clients send it, e.g. ``BTC-RUB``."""
    coingecko_id: str
    binance_symbol: str
    """Binance market giving the asset's USD price (USDT or USDC quoted)."""
    binance_invert: bool = False
    """The market quotes the other way round (USDC/USDT prices USDC, we want USDT)."""
    entry: str | None = None
    """The ``RATESVC_EXTRA_ASSETS`` entry that added it (None for the standard eight)."""

    @property
    def quote(self) -> str:
        return self.name.rsplit("-", 1)[1]

    @property
    def asset(self) -> str:
        return self.name.rsplit("-", 1)[0]


STANDARD: tuple[Direction, ...] = (
    Direction("BTC-USD", "bitcoin", "BTCUSDT"),
    Direction("BTC-RUB", "bitcoin", "BTCUSDT"),
    Direction("ETH-USD", "ethereum", "ETHUSDT"),
    Direction("ETH-RUB", "ethereum", "ETHUSDT"),
    Direction("USDTTRC-USD", "tether", "USDCUSDT", binance_invert=True),
    Direction("USDTTRC-RUB", "tether", "USDCUSDT", binance_invert=True),
    Direction("USDTERC-USD", "tether", "USDCUSDT", binance_invert=True),
    Direction("USDTERC-RUB", "tether", "USDCUSDT", binance_invert=True),
)

QUOTES = ("USD", "RUB")
USD_RUB_LEGS = ("tether/rub", "tether/usd")
"""CoinGecko markets whose ratio gives USD-RUB for binance cross rates."""
STANDARD_ASSETS = tuple(dict.fromkeys(d.asset for d in STANDARD))
assert all(d.quote in QUOTES for d in STANDARD), "every direction quotes USD or RUB"


class _Table(Sequence[Direction]):
    """The configured directions, in answer order; a live view changed by ``configure``."""

    def __init__(self, directions: Iterable[Direction]) -> None:
        self._rows: tuple[Direction, ...] = tuple(directions)

    @overload
    def __getitem__(self, index: int) -> Direction: ...
    @overload
    def __getitem__(self, index: slice) -> Sequence[Direction]: ...
    def __getitem__(self, index: int | slice) -> Direction | Sequence[Direction]:
        return self._rows[index]

    def __len__(self) -> int:
        return len(self._rows)

    def __iter__(self) -> Iterator[Direction]:
        return iter(self._rows)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, tuple | list | _Table) and self._rows == tuple(other)

    def __hash__(self) -> int:
        return hash(self._rows)

    def __repr__(self) -> str:
        return f"DIRECTIONS{self._rows!r}"


class _Names(Sequence[str]):
    """The configured direction names, in answer order; equal to a tuple or list of them."""

    def __init__(self, table: _Table) -> None:
        self._table = table

    @overload
    def __getitem__(self, index: int) -> str: ...
    @overload
    def __getitem__(self, index: slice) -> Sequence[str]: ...
    def __getitem__(self, index: int | slice) -> str | Sequence[str]:
        if isinstance(index, slice):
            return tuple(d.name for d in self._table[index])
        return self._table[index].name

    def __len__(self) -> int:
        return len(self._table)

    def __iter__(self) -> Iterator[str]:
        return (d.name for d in self._table)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, tuple | list | _Names) and tuple(self) == tuple(other)

    def __hash__(self) -> int:
        return hash(tuple(self))

    def __repr__(self) -> str:
        return f"NAMES{tuple(self)!r}"


DIRECTIONS = _Table(STANDARD)
NAMES = _Names(DIRECTIONS)
"""Every configured direction name, in answer order."""
BY_NAME: dict[str, Direction] = {d.name: d for d in STANDARD}


def extra_directions(assets: Sequence[ExtraAsset]) -> list[Direction]:
    """``ASSET-USD`` and ``ASSET-RUB`` of each extra asset, priced as BTC and ETH are."""
    return [
        Direction(f"{a.asset}-{quote}", a.coingecko_id, a.binance_symbol, entry=a.entry)
        for a in assets
        for quote in QUOTES
    ]


def configure(assets: Sequence[ExtraAsset] = ()) -> None:
    """Make the table the standard eight followed by the extra assets (in place)."""
    rows = (*STANDARD, *extra_directions(assets))
    DIRECTIONS._rows = rows  # the one writer of the live view
    BY_NAME.clear()
    BY_NAME.update({d.name: d for d in rows})


def lookup(raw: str) -> Direction | None:
    """The direction a client named, with the rules of ``?direction=`` (case, spaces)."""
    return BY_NAME.get(raw.strip().upper())


def select(raw: Iterable[str]) -> tuple[tuple[str, ...], list[str]]:
    """``(chosen names in table order without repeats, unknown names sorted)``.

    Each value may be comma-separated; case and surrounding spaces do not
    matter; empty parts are ignored.
    """
    wanted = {part.strip().upper() for item in raw for part in item.split(",") if part.strip()}
    unknown = sorted(wanted - BY_NAME.keys())
    return tuple(name for name in NAMES if name in wanted), unknown


def entry_of_symbol(symbol: str) -> str | None:
    """The ``RATESVC_EXTRA_ASSETS`` entry that asked for a Binance symbol, if one did."""
    return next((d.entry for d in DIRECTIONS if d.binance_symbol == symbol and d.entry), None)


def binance_symbols() -> list[str]:
    return sorted({d.binance_symbol for d in DIRECTIONS})


def coingecko_ids() -> list[str]:
    return sorted({d.coingecko_id for d in DIRECTIONS} | {"tether"})


def coingecko_currencies() -> list[str]:
    return sorted({q.lower() for q in QUOTES})
