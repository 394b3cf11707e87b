"""The ``/v1/courses`` query string -> one normalised query, whatever its spelling.

``?direction=eth-rub,BTC-USD&direction=btc-usd`` and
``?direction=BTC-USD&direction=ETH-RUB`` ask the same thing, so they parse to
the same ``CoursesQuery`` with the same ``key``: the key of the local answer
cache, so every spelling of a shape shares one rendered answer and one ETag.

Rules (the README's API section says the same):
- ``exchanger``: one source name, case-insensitive.  Repeating it with the
  same value is harmless; two different values are a 400.
- ``direction``: repeated and/or comma-separated, case-insensitive, spaces
  around a value ignored; rows come in the table's order, each once.
- An empty value (``direction=``, ``exchanger=``) is no filter, as if the
  parameter were absent: forms and client libraries send an empty field when
  nothing was chosen.
- Other parameters are ignored.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import parse_qsl

from ratesvc.courses.directions import Direction

ALL = "*"
MEMO_MAX = 4096
"""Raw query strings remembered with their parse (a client may send many spellings)."""


class QueryError(ValueError):
    """A query a client must fix: answered 400 with ``detail`` and the ``valid`` values."""

    def __init__(self, detail: str, valid: Sequence[str]) -> None:
        super().__init__(detail)
        self.detail = detail
        self.valid = list(valid)


@dataclass(frozen=True, slots=True)
class CoursesQuery:
    exchanger: str | None
    """A source name, or None: each direction from the best fresh source."""
    directions: tuple[str, ...]
    """Canonical names in the table's order, each once."""
    key: str
    """Equal for equal answers: ``<exchanger or *>|<directions or *>``."""


def query_values(raw: bytes) -> dict[str, list[str]]:
    """Every value of every parameter, in order (percent-decoded, empty values kept)."""
    values: dict[str, list[str]] = {}
    for name, value in parse_qsl(raw.decode("latin-1"), keep_blank_values=True):
        values.setdefault(name, []).append(value)
    return values


class CoursesQueries:
    """Parses ``/v1/courses`` query strings against the direction table and the sources."""

    def __init__(
        self, directions: Sequence[Direction], sources: Sequence[str], memo_max: int = MEMO_MAX
    ) -> None:
        self.names = tuple(d.name for d in directions)
        self._known = frozenset(self.names)
        self.sources = tuple(sources)
        self.memo_max = memo_max
        self._memo: dict[bytes, CoursesQuery] = {}

    def query(self, exchanger: str | None, directions: Sequence[str] = ()) -> CoursesQuery:
        """The query of already canonical values (``directions`` empty: all of them)."""
        chosen = set(directions)
        names = tuple(n for n in self.names if n in chosen) if chosen else self.names
        wanted = ALL if names == self.names else ",".join(names)
        return CoursesQuery(exchanger, names, f"{exchanger or ALL}|{wanted}")

    def parse(self, raw: bytes) -> CoursesQuery:
        """The query of a raw query string; raises ``QueryError`` for a bad one."""
        known = self._memo.get(raw)
        if known is not None:
            return known
        values = query_values(raw)
        query = self.query(
            self._exchanger(values.get("exchanger", [])),
            self._directions(values.get("direction", [])),
        )
        if len(self._memo) >= self.memo_max:
            del self._memo[next(iter(self._memo))]  # the oldest spelling goes first
        self._memo[raw] = query
        return query

    def _exchanger(self, given: list[str]) -> str | None:
        chosen = {v.strip().lower() for v in given} - {""}
        if len(chosen) > 1:
            raise QueryError(f"exchanger given twice: {', '.join(sorted(chosen))}", self.sources)
        if not chosen:
            return None
        exchanger = chosen.pop()
        if exchanger not in self.sources:
            raise QueryError(f"unknown exchanger: {exchanger}", self.sources)
        return exchanger

    def _directions(self, given: list[str]) -> list[str]:
        wanted = [part.strip().upper() for item in given for part in item.split(",")]
        wanted = [w for w in wanted if w]
        unknown = sorted(set(wanted) - self._known)
        if unknown:
            raise QueryError(f"unknown direction: {', '.join(unknown)}", self.names)
        return wanted
