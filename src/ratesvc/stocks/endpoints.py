"""What an endpoint of the Polygon gateway is: one declaration of path, parameters, cache rule.

An ``Endpoint`` names Polygon's path (``{ticker}`` and ``{date}`` are the
only path parameters, both checked), the query parameters that are
forwarded upstream and make up the cache key (any other, ``apiKey``
included, is dropped), how long an answer stays fresh, and optionally a way
to answer without Polygon (``local``) or to learn more from an answer
(``after_fetch``).  Routes, keys, purge and metrics all follow from it.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from functools import cached_property
from typing import TYPE_CHECKING, Protocol
from urllib.parse import quote, urlencode

from ratesvc.stocks import keys
from ratesvc.stocks.docstore import FOREVER, Document
from ratesvc.stocks.query import QueryError, check_ticker
from ratesvc.stocks.sessions import Sessions, previous_close_changes_ms
from ratesvc.stocks.timegrid import eastern_midnight_ms

if TYPE_CHECKING:
    from ratesvc.stocks.gateway import Answer, Gateway

_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_PLACEHOLDER = re.compile(r"\{(\w+)\}")
_BOOLEANS = frozenset({"adjusted", "include_otc", "active"})
_DEFAULTS = {"adjusted": "true", "include_otc": "false"}
"""Polygon's defaults: asking for one explicitly is the same answer as leaving it out."""
_MAX_VALUE = 200


class Freshness(Protocol):
    async def fresh_until(self, request: DocRequest, now_ms: int, sessions: Sessions) -> int:
        """The instant (ms) until which an answer fetched at ``now_ms`` is served as is."""
        ...


@dataclass(frozen=True)
class Ttl:
    """Fresh for a fixed time (reference data, market status)."""

    seconds: float

    async def fresh_until(self, request: DocRequest, now_ms: int, sessions: Sessions) -> int:
        return now_ms + int(self.seconds * 1000)


@dataclass(frozen=True)
class ClosedDayForever:
    """A day's summary: final once the day is over and settled; today's for ``today_s``.

    A weekday Polygon reports closed all day (a holiday) stops changing at once.
    """

    today_s: float

    async def fresh_until(self, request: DocRequest, now_ms: int, sessions: Sessions) -> int:
        day = date.fromisoformat(request.path["date"])
        if sessions.settled(day, now_ms):
            return FOREVER
        if await sessions.closed_all_day(day, now_ms):
            return eastern_midnight_ms(day + timedelta(days=1)) + sessions.settle_ms
        return now_ms + int(self.today_s * 1000)


@dataclass(frozen=True)
class UntilPreviousCloseMoves:
    """The previous close: kept until the next session's day begins."""

    async def fresh_until(self, request: DocRequest, now_ms: int, sessions: Sessions) -> int:
        return previous_close_changes_ms(now_ms)


LocalAnswer = Callable[["Gateway", "DocRequest"], Awaitable["Answer | None"]]
"""Answers from what the cache already holds (or None to ask Polygon)."""
AfterFetch = Callable[["Gateway", "DocRequest", Document], Awaitable[None]]
"""Learns from a fresh upstream answer (e.g. indexes it for other endpoints)."""


@dataclass(frozen=True)
class Endpoint:
    name: str
    """Metric label and part of the cache key."""
    path: str
    """Polygon's path; ``{ticker}`` and ``{date}`` are checked path parameters."""
    params: tuple[str, ...]
    """Query parameters forwarded upstream and part of the cache key."""
    freshness: Freshness
    paged: bool = False
    """Polygon answers with ``next_url``: rewritten to point back at ratesvc, key-free."""
    local: LocalAnswer | None = None
    after_fetch: AfterFetch | None = None
    summary: str = ""

    @cached_property
    def path_params(self) -> tuple[str, ...]:
        return tuple(_PLACEHOLDER.findall(self.path))

    @property
    def route_path(self) -> str:
        """The path in Litestar's syntax."""
        return _PLACEHOLDER.sub(r"{\1:str}", self.path)

    def request(self, path: Mapping[str, str], query: Mapping[str, str]) -> DocRequest:
        """Check a client's request; raise QueryError naming the first bad part."""
        checked = {name: _check_path(name, path[name]) for name in self.path_params}
        forwarded = []
        for name in self.params:
            value = query.get(name, "")
            if value == "":  # an empty value means the same as none, as Polygon reads it
                continue
            value = _check_query(name, value)
            if _DEFAULTS.get(name) != value:
                forwarded.append((name, value))
        return DocRequest(self, checked, tuple(sorted(forwarded)))


@dataclass(frozen=True)
class DocRequest:
    endpoint: Endpoint
    path: dict[str, str] = field(hash=False)
    query: tuple[tuple[str, str], ...]

    @property
    def ticker(self) -> str | None:
        return self.path.get("ticker")

    @property
    def upstream_path(self) -> str:
        return _PLACEHOLDER.sub(
            lambda m: quote(self.path[m.group(1)], safe=":.-_"), self.endpoint.path
        )

    @cached_property
    def name(self) -> str:
        """The document's name in Redis: per ticker when the path has one (purged with it)."""
        others = [v for k, v in sorted(self.path.items()) if k != "ticker"]
        rest = "/".join(others) + (f"?{urlencode(self.query)}" if self.query else "")
        return keys.doc_name(self.ticker, self.endpoint.name, rest)

    def flag(self, name: str, default: bool) -> bool:
        value = dict(self.query).get(name)
        return default if value is None else value == "true"


def _check_path(name: str, value: str) -> str:
    if name == "ticker":
        check_ticker(value)
        return value
    if name == "date":
        return _check_date(name, value)
    raise QueryError(f"unknown path parameter {name!r}")  # a declaration error, caught by tests


def _check_date(name: str, value: str) -> str:
    problem = f"`{name}` {value!r} must be a calendar date YYYY-MM-DD"
    if not _DATE.match(value):
        raise QueryError(problem)
    try:
        return date.fromisoformat(value).isoformat()
    except ValueError:
        raise QueryError(problem) from None


def _check_query(name: str, value: str) -> str:
    if name in _BOOLEANS:
        lowered = value.lower()
        if lowered not in {"true", "false"}:
            raise QueryError(f"`{name}` must be true or false, not {value!r}")
        return lowered
    if name == "date":
        return _check_date(name, value)
    if name == "limit":
        if not value.isdigit() or not 1 <= int(value) <= 1000:
            raise QueryError(f"`limit` must be an integer from 1 to 1000, not {value!r}")
        return str(int(value))
    if name == "order" and value not in {"asc", "desc"}:
        raise QueryError(f"`order` must be asc or desc, not {value!r}")
    if len(value) > _MAX_VALUE or not value.isprintable():
        raise QueryError(f"`{name}` must be printable text of at most {_MAX_VALUE} characters")
    return value
