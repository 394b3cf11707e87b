"""Rates -> the exact bytes of a ``/v1/courses`` answer, its ETag and how long it holds.

Each process renders a query shape once per change of the quotes it holds
(``local.py``) and serves those bytes until they change or expire.  An answer
carries ``valid_until``: the moment one of its rows turns stale, after which
it must be rendered again from the quotes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Annotated

import msgspec

from ratesvc.courses.directions import NAMES
from ratesvc.courses.rates import Rate

MIXED = "mixed"
"""Top-level ``exchanger`` when the rows of a default answer come from several sources."""
_IDLE_VALIDITY = timedelta(seconds=60)

_encoder = msgspec.json.Encoder(decimal_format="number")
ALL_DIRECTIONS = NAMES
"""Every configured direction (a live view: extra assets included once configured)."""

Number = Annotated[Decimal, msgspec.Meta(extra_json_schema={"extra": {"type": "number"}})]
"""A Decimal sent as a JSON number (``decimal_format="number"``), documented as one."""


class Course(msgspec.Struct, omit_defaults=True):
    direction: str
    value: Number
    source: str
    updated_at: datetime
    legs: tuple[str, ...] | None = None
    """For a derived (cross) rate: ``source:market`` of each quote it was computed from."""
    stale: bool = False
    """Only with an explicit ``exchanger``: the value is older than that source's freshness limit."""


class Courses(msgspec.Struct, omit_defaults=True):
    exchanger: str
    courses: list[Course]
    missing: list[str] = msgspec.field(default_factory=list)
    """Requested directions with no fresh value, left out of this answer."""


class Unavailable(msgspec.Struct):
    error: str
    detail: str
    directions: list[str]


@dataclass(frozen=True)
class Rendered:
    status: int
    body: bytes
    etag: str
    valid_until: datetime
    rows: tuple[Course, ...] = ()
    """The rows of the body, for answers computed from it (``/v1/convert``)."""


def etag_of(body: bytes) -> str:
    """A strong validator: equal ETags mean byte-identical bodies."""
    return '"' + hashlib.blake2b(body, digest_size=12).hexdigest() + '"'


def _row(rate: Rate, *, stale: bool = False) -> Course:
    return Course(
        direction=rate.direction,
        value=rate.value,
        source=rate.source,
        updated_at=rate.updated_at.replace(microsecond=rate.updated_at.microsecond // 1000 * 1000),
        legs=rate.legs,
        stale=stale,
    )


def render(
    rates: Sequence[Rate],
    now: datetime,
    *,
    order: Sequence[str],
    directions: Sequence[str] = ALL_DIRECTIONS,
    exchanger: str | None = None,
    partial: str = "omit",
) -> Rendered:
    """The answer for one query shape at ``now``; ``order``: source names in failover order."""
    by_key = {(r.direction, r.source): r for r in rates}
    rows: list[Course] = []
    missing: list[str] = []
    turns_at: list[datetime] = []
    for direction in directions:
        if exchanger is None:
            chosen = next(
                (
                    rate
                    for source in order
                    if (rate := by_key.get((direction, source))) and rate.is_fresh(now)
                ),
                None,
            )
            if chosen is None:
                missing.append(direction)
                continue
            rows.append(_row(chosen))
            turns_at.append(chosen.fresh_until)
        else:
            rate = by_key.get((direction, exchanger))
            if rate is None:
                missing.append(direction)
                continue
            fresh = rate.is_fresh(now)
            rows.append(_row(rate, stale=not fresh))
            if fresh:
                turns_at.append(rate.fresh_until)
    valid_until = min(turns_at, default=now + _IDLE_VALIDITY)
    if not rows or (exchanger is None and missing and partial == "fail"):
        detail = "no fresh rate for " + ", ".join(missing)
        if exchanger is not None:
            detail = f"no {exchanger} rate for " + ", ".join(missing)
        body = _encoder.encode(Unavailable("service_unavailable", detail, missing))
        return Rendered(503, body, etag_of(body), min(valid_until, now + timedelta(seconds=1)))
    sources = {row.source for row in rows}
    top = exchanger or (sources.pop() if len(sources) == 1 else MIXED)
    body = _encoder.encode(Courses(exchanger=top, courses=rows, missing=missing))
    return Rendered(200, body, etag_of(body), valid_until, tuple(rows))
