"""``/v1/convert``: an amount of one asset in another, at the rate ``/v1/courses`` serves.

The rate of crypto A in fiat F is the value of the ``A-F`` row that
``/v1/courses?direction=A-F`` answers at that moment: it is read from the same
local answers (``local.py``), so the same freshness bound, failover order and
"never an old price without a mark" hold (no fresh row: 503).  Fiat to crypto
uses the inverse of that row; crypto to crypto is a cross through USD
(``A-USD / B-USD``), listing both rows as its legs.

Arithmetic is decimal end to end: ``result`` is ``amount * value`` (or
``amount / value``) computed exactly enough and rounded half-even to
``RESULT_PLACES`` decimal places (1 satoshi; finer than any fiat unit), with
trailing zeros dropped, so it never prints binary-float noise.  A derived
``rate`` (inverse or cross) is given to ``RATE_DIGITS`` significant digits;
``result`` is computed from the rows, not from that rounded rate.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_HALF_EVEN, Context, Decimal

import msgspec

from ratesvc.courses.directions import Direction
from ratesvc.courses.local import DEFAULT_MAX_ANSWERS, Answer, LocalAnswers
from ratesvc.courses.query import CoursesQueries, QueryError, query_values
from ratesvc.courses.render import Course, Number, Unavailable

MAX_AMOUNT = Decimal("1e15")
MAX_AMOUNT_PLACES = 18
RESULT_PLACES = 8
RATE_DIGITS = 16
CROSS_VIA = "USD"
MIXED = "mixed"
MEMO_MAX = 4096

_NUMBER = re.compile(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?")
_NOT_FINITE = {"nan", "snan", "inf", "infinity"}
_EXACT = Context(prec=60)
"""Wide enough for 1e15 times the largest rate to eight places without rounding."""
_RATE = Context(prec=RATE_DIGITS, rounding=ROUND_HALF_EVEN)
_RESULT_QUANTUM = Decimal(1).scaleb(-RESULT_PLACES)
_encode = msgspec.json.Encoder(decimal_format="number").encode


class Conversion(msgspec.Struct, omit_defaults=True):
    from_: str = msgspec.field(name="from")
    to: str
    amount: Number
    rate: Number
    """Units of ``to`` per one ``from``."""
    result: Number
    source: str
    """The source of the rate, or ``mixed`` when the legs of a cross come from two."""
    updated_at: datetime
    """Of the oldest price used."""
    legs: tuple[str, ...] | None = None
    """A derived rate's inputs: the row's own legs, or ``source:direction`` of each cross leg."""


@dataclass(frozen=True, slots=True)
class ConvertQuery:
    from_: str
    to: str
    amount: Decimal
    directions: tuple[str, ...]
    """The ``/v1/courses`` rows needed: one, or two for a cross (numerator first)."""
    inverse: bool
    """Fiat to crypto: ``amount / value``."""
    key: str


def plain(value: Decimal) -> Decimal:
    """``value`` without exponent notation or trailing zeros (``1E+3`` -> ``1000``)."""
    text = format(value, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return Decimal(text)


def parse_amount(text: str | None) -> Decimal:
    """A positive decimal of at most ``MAX_AMOUNT``; absent or empty is 1."""
    if text is None or not text.strip():
        return Decimal(1)
    text = text.strip()
    if text.lower().lstrip("+-") in _NOT_FINITE:
        raise QueryError(f"amount must be a finite number, not {text}", ["a positive decimal"])
    if not _NUMBER.fullmatch(text):
        raise QueryError(f"amount is not a number: {text[:40]}", ["a positive decimal"])
    amount = Decimal(text)
    if amount <= 0:
        raise QueryError(f"amount must be positive: {text[:40]}", ["a positive decimal"])
    if amount > MAX_AMOUNT:
        raise QueryError(f"amount over 1e15: {text[:40]}", ["a positive decimal"])
    # From the digits, not normalize(): 1e-99999999999 would underflow to 0 there.
    _, digits, exponent = amount.as_tuple()
    assert isinstance(exponent, int)  # finite, checked above
    trailing_zeros = len(digits) - len("".join(map(str, digits)).rstrip("0"))
    if -(exponent + trailing_zeros) > MAX_AMOUNT_PLACES:
        raise QueryError(
            f"amount has more than {MAX_AMOUNT_PLACES} decimal places: {text[:40]}",
            ["a positive decimal"],
        )
    return plain(amount)


class ConvertQueries:
    """Parses ``/v1/convert`` query strings against the direction table."""

    def __init__(
        self, directions: Sequence[Direction], fiats: Sequence[str], memo_max: int = MEMO_MAX
    ) -> None:
        self.names = frozenset(d.name for d in directions)
        self.assets = tuple(dict.fromkeys(d.name.rsplit("-", 1)[0] for d in directions))
        self.fiats = tuple(fiats)
        self.valid = [*self.assets, *self.fiats]
        self.memo_max = memo_max
        self._memo: dict[bytes, ConvertQuery] = {}

    def parse(self, raw: bytes) -> ConvertQuery:
        known = self._memo.get(raw)
        if known is not None:
            return known
        values = query_values(raw)
        from_ = self._asset("from", values.get("from", []))
        to = self._asset("to", values.get("to", []))
        amounts = {v.strip() for v in values.get("amount", [])} - {""}
        if len(amounts) > 1:
            raise QueryError("amount given twice", ["one positive decimal"])
        amount = parse_amount(amounts.pop() if amounts else None)
        query = self._route(from_, to, amount)
        if len(self._memo) >= self.memo_max:
            del self._memo[next(iter(self._memo))]
        self._memo[raw] = query
        return query

    def _asset(self, name: str, given: list[str]) -> str:
        chosen = {v.strip().upper() for v in given} - {""}
        if not chosen:
            raise QueryError(f"`{name}` is required: an asset or a fiat currency", self.valid)
        if len(chosen) > 1:
            raise QueryError(f"`{name}` given twice: {', '.join(sorted(chosen))}", self.valid)
        asset = chosen.pop()
        if asset not in self.valid:
            raise QueryError(f"unknown asset in `{name}`: {asset[:40]}", self.valid)
        return asset

    def _route(self, from_: str, to: str, amount: Decimal) -> ConvertQuery:
        if from_ == to:
            raise QueryError(f"`from` and `to` are the same: {from_}", self.valid)
        if from_ in self.fiats and to in self.fiats:
            raise QueryError(
                f"two fiat currencies ({from_}, {to}): one side must be an asset", self.assets
            )
        directions: tuple[str, ...]
        if to in self.fiats:
            directions, inverse = (f"{from_}-{to}",), False
        elif from_ in self.fiats:
            directions, inverse = (f"{to}-{from_}",), True
        else:
            directions, inverse = (f"{from_}-{CROSS_VIA}", f"{to}-{CROSS_VIA}"), False
        absent = [d for d in directions if d not in self.names]
        if absent:
            raise QueryError(
                f"no direction {', '.join(absent)} to convert with", sorted(self.names)
            )
        return ConvertQuery(from_, to, amount, directions, inverse, f"{from_}|{to}|{amount}")


def convert(query: ConvertQuery, rows: Sequence[Course]) -> Conversion:
    """The conversion at the rows' values (``rows`` as ``query.directions``)."""
    amount = query.amount
    if len(rows) == 1:
        row = rows[0]
        if query.inverse:
            rate = _RATE.divide(Decimal(1), row.value)
            exact = _EXACT.divide(amount, row.value)
        else:
            rate = row.value
            exact = _EXACT.multiply(amount, row.value)
        source, updated_at, legs = row.source, row.updated_at, row.legs
    else:
        numerator, denominator = rows
        rate = _RATE.divide(numerator.value, denominator.value)
        exact = _EXACT.divide(_EXACT.multiply(amount, numerator.value), denominator.value)
        sources = {numerator.source, denominator.source}
        source = sources.pop() if len(sources) == 1 else MIXED
        updated_at = min(numerator.updated_at, denominator.updated_at)
        legs = tuple(f"{r.source}:{r.direction}" for r in rows)
    result = exact.quantize(_RESULT_QUANTUM, rounding=ROUND_HALF_EVEN, context=_EXACT)
    return Conversion(
        from_=query.from_,
        to=query.to,
        amount=amount,
        rate=plain(rate),
        result=plain(result),
        source=source,
        updated_at=updated_at,
        legs=legs,
    )


class Conversions:
    """Conversion answers, each kept while the ``/v1/courses`` answers it was computed from last."""

    def __init__(
        self,
        answers: LocalAnswers,
        courses: CoursesQueries,
        queries: ConvertQueries,
        max_answers: int = DEFAULT_MAX_ANSWERS,
    ) -> None:
        self.answers = answers
        self.queries = queries
        self.max_answers = max_answers
        self._by_direction = {name: courses.query(None, (name,)) for name in courses.names}
        self._cache: dict[str, tuple[tuple[Answer, ...], Answer]] = {}

    async def answer(self, query: ConvertQuery) -> Answer:
        """The conversion now (raises what the Redis client raises, as ``LocalAnswers``)."""
        used = tuple([await self.answers.answer(self._by_direction[d]) for d in query.directions])
        cached = self._cache.pop(query.key, None)
        if cached is None or any(a is not b for a, b in zip(cached[0], used, strict=True)):
            cached = (used, _answer(query, used))
        if len(self._cache) >= self.max_answers:
            del self._cache[next(iter(self._cache))]
        self._cache[query.key] = cached  # last: the least recently used go first
        return cached[1]


def _answer(query: ConvertQuery, used: Sequence[Answer]) -> Answer:
    valid_until_ms = min(a.valid_until_ms for a in used)
    missing = [d for d, a in zip(query.directions, used, strict=True) if not a.rows]
    if missing:
        body = _encode(
            Unavailable("service_unavailable", "no fresh rate for " + ", ".join(missing), missing)
        )
        return Answer.of(503, body, valid_until_ms)
    return Answer.of(200, _encode(convert(query, [a.rows[0] for a in used])), valid_until_ms)
