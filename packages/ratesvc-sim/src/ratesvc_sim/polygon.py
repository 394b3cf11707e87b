"""Polygon.io (Massive) simulator: aggregates, daily summaries, reference data.

Serves, under ``/polygon``, ``/v2/aggs/ticker/{ticker}/range/{multiplier}/{timespan}/{from}/{to}``
with Polygon's wire format: its key order, ``results`` left out when empty,
``next_url`` pages with an opaque ``cursor`` and without the key, ``401`` for
a bad key (``apiKey`` query or ``Authorization: Bearer``) and ``429`` over a
per-minute limit.  The same key check, limit and scripted faults guard the
previous close, daily open/close, grouped daily bars, ticker details and
lists, and market status (shapes and their sources: ``polygon_reference``).

Bars are deterministic for any upper-case ticker: a smooth pseudo-random walk sampled
at each bar's start, on weekdays only, intraday from 04:00 to 20:00 US
Eastern (pre- and after-market included).  Bucket starts follow Eastern
midnight; as Polygon documents it, every bar that overlaps ``[from, to]`` is
returned whole (``from`` snaps back to its bar's start, ``to`` on to its bar's
end), so a weekly bar asked from a Wednesday starts on the Sunday before.
``adjusted=false`` shows a 2:1 split on 2020-08-31: earlier prices doubled.

Tests steer it through the object (``fail_next``, ``delay_s``, ``calls``) or,
out of process, through ``/polygon/_sim/faults`` and ``/polygon/_sim/stats``.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import math
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any, Literal

import msgspec
from litestar import MediaType, Request, Response, Router, get, post

from ratesvc.stocks.timegrid import (
    DAY_MS,
    EASTERN,
    TIMESPANS,
    eastern_date,
    eastern_midnight_ms,
)
from ratesvc_sim import polygon_reference as reference

HOUR_MS = 3_600_000
SESSION_OPENS_MS = 4 * HOUR_MS
SESSION_CLOSES_MS = 20 * HOUR_MS
SPLIT_DAY = date(2020, 8, 31)
MAX_LIMIT = 50_000
DEFAULT_LIMIT = 5000
_INTRADAY_MS = {"second": 1000, "minute": 60_000, "hour": HOUR_MS}
_MONTHS = {"month": 1, "quarter": 3, "year": 12}
TICKERS_DEFAULT_LIMIT = 100
TICKERS_MAX_LIMIT = 1000

Body = Literal["json", "html", "garbage"]


class Fault(msgspec.Struct, kw_only=True):
    """One scripted failure: answer ``status`` (with this body) instead of bars."""

    status: int = 500
    count: int = 1
    body: Body = "json"
    retry_after: float | None = None


class RecordedCall(msgspec.Struct, kw_only=True):
    """An aggregates request as the simulator saw it."""

    path: str
    query: dict[str, str]
    api_key: str | None
    authorization: str | None
    status: int
    at: float


@dataclass(frozen=True)
class _AggsPath:
    ticker: str
    multiplier: str
    timespan: str
    from_: str
    to: str


@dataclass
class _Cursor:
    offset: int
    limit: int
    sort: str
    adjusted: bool


@dataclass
class PolygonSimulator:
    seed: int = 1
    api_key: str | None = None
    """The only key accepted; None accepts any non-empty key."""
    calls_per_minute: int | None = None
    """Answer 429 past this many calls in 60 s; None for no limit."""
    send_retry_after: bool = True
    next_url_host: str | None = None
    """Put this host (``https://api.polygon.io``) in next_url instead of our own."""
    delay_s: float = 0.0
    """Sleep this long before every answer (slow upstream)."""
    max_page: int = MAX_LIMIT
    """Most bars in one page whatever ``limit`` says (small to exercise next_url)."""
    now_s: Callable[[], float] = time.time
    """The simulator's clock (market status, "today" for the previous close)."""
    calls: list[RecordedCall] = field(default_factory=list)
    faults: deque[Fault] = field(default_factory=deque)
    _accepted: deque[float] = field(default_factory=deque, init=False, repr=False)

    @property
    def call_count(self) -> int:
        return len(self.calls)

    def fail_next(
        self,
        status: int = 500,
        count: int = 1,
        *,
        body: Body = "json",
        retry_after: float | None = None,
    ) -> None:
        self.faults.append(Fault(status=status, count=count, body=body, retry_after=retry_after))

    def reset(self) -> None:
        self.calls.clear()
        self.faults.clear()
        self._accepted.clear()
        self.delay_s = 0.0

    # --- bars -------------------------------------------------------------------

    def bars(
        self,
        ticker: str,
        multiplier: int,
        timespan: str,
        from_ms: int,
        to_ms: int,
        *,
        adjusted: bool = True,
    ) -> list[dict[str, Any]]:
        """Every bar that overlaps ``[from_ms, to_ms]``, whole, oldest first.

        Tickers are case-sensitive, as on Polygon: one with a lowercase letter
        is unknown and has no bars.
        """
        if ticker != ticker.upper():
            return []
        starts = self._bucket_starts(multiplier, timespan, from_ms, to_ms)
        return [self._bar(ticker, start, width, adjusted) for start, width in starts]

    def _bucket_starts(
        self, multiplier: int, timespan: str, from_ms: int, to_ms: int
    ) -> list[tuple[int, int]]:
        if from_ms > to_ms:
            return []
        first_day, last_day = eastern_date(from_ms), eastern_date(to_ms)
        if timespan in _INTRADAY_MS:
            width = _INTRADAY_MS[timespan] * multiplier
            starts = []
            day = first_day
            while day <= last_day:
                if day.weekday() < 5:
                    midnight = eastern_midnight_ms(day)
                    # The bar holding ``from_ms`` counts: it ends after it.
                    low = max(midnight + SESSION_OPENS_MS, from_ms) - width + 1
                    high = min(midnight + SESSION_CLOSES_MS - 1, to_ms)
                    k = max(0, -(-(low - midnight) // width))
                    while midnight + k * width <= high:
                        starts.append((midnight + k * width, width))
                        k += 1
                day += timedelta(days=1)
            return starts
        periods = self._periods(multiplier, timespan, first_day, last_day)
        result = []
        for start, end in periods:  # each overlaps [first_day, last_day]
            if _has_weekday(start, end):
                t = eastern_midnight_ms(start)
                result.append((t, eastern_midnight_ms(end) - t))
        return result

    @staticmethod
    def _periods(
        multiplier: int, timespan: str, first_day: date, last_day: date
    ) -> list[tuple[date, date]]:
        """``(start, end exclusive)`` of each bucket overlapping the days, aligned on a grid."""
        periods = []
        if timespan in {"day", "week"}:
            days = multiplier * (7 if timespan == "week" else 1)
            # Day buckets are aligned on ordinal 1; weeks start on Sunday, ordinal 7.
            anchor = 1 if timespan == "day" else 7
            ordinal = anchor + (first_day.toordinal() - anchor) // days * days
            while (start := date.fromordinal(ordinal)) <= last_day:
                periods.append((start, start + timedelta(days=days)))
                ordinal += days
            return periods
        months = _MONTHS[timespan] * multiplier
        index = (first_day.year * 12 + first_day.month - 1) // months
        while True:
            start_month = index * months
            start = date(start_month // 12, start_month % 12 + 1, 1)
            if start > last_day:
                break
            end_month = start_month + months
            periods.append((start, date(end_month // 12, end_month % 12 + 1, 1)))
            index += 1
        return periods

    def _noise(self, ticker: str, t: int) -> tuple[float, float, float, float]:
        digest = hashlib.blake2b(f"{self.seed}:{ticker}:{t}".encode(), digest_size=16).digest()
        return tuple(  # type: ignore[return-value]
            int.from_bytes(digest[i : i + 4], "big") / 2**32 for i in range(0, 16, 4)
        )

    def _price(self, ticker: str, t: int) -> float:
        h = int.from_bytes(hashlib.blake2b(ticker.encode(), digest_size=4).digest(), "big")
        base = 20 + (h % 48_000) / 100
        days = t / DAY_MS
        phase = (h % 628) / 100
        drift = 0.25 * math.sin(2 * math.pi * days / 397 + phase)
        swing = 0.06 * math.sin(2 * math.pi * days / 23 + phase * 2)
        intraday = 0.01 * math.sin(2 * math.pi * t / (5 * HOUR_MS) + phase * 3)
        return base * (1 + drift + swing + intraday)

    def _bar(self, ticker: str, t: int, width: int, adjusted: bool) -> dict[str, Any]:
        u1, u2, u3, u4 = self._noise(ticker, t)
        o = self._price(ticker, t) * (1 + (u1 - 0.5) * 0.002)
        c = self._price(ticker, t + width) * (1 + (u2 - 0.5) * 0.002)
        h = max(o, c) * (1 + u3 * 0.004)
        low = min(o, c) * (1 - u4 * 0.004)
        volume = round(100 + u3 * 5000 * math.sqrt(width / 1000))
        factor = 2.0 if not adjusted and eastern_date(t) < SPLIT_DAY else 1.0
        bar: dict[str, Any] = {
            "v": float(volume) / factor,
            "vw": round((h + low + c) / 3 * factor, 4),
            "o": round(o * factor, 4),
            "c": round(c * factor, 4),
            "h": round(h * factor, 4),
            "l": round(low * factor, 4),
            "t": t,
            "n": 1 + int(u4 * volume / 10),
        }
        return bar

    # --- HTTP -------------------------------------------------------------------

    def routes(self) -> list[Any]:
        sim = self

        @get(
            "/v2/aggs/ticker/{ticker:str}/range/{multiplier:str}/{timespan:str}/{from_:str}/{to:str}"
        )
        async def aggs(
            request: Request[Any, Any, Any],
            *,
            ticker: str,
            multiplier: str,
            timespan: str,
            from_: str,
            to: str,
        ) -> Response[bytes]:
            path = _AggsPath(ticker, multiplier, timespan, from_, to)
            return await sim._answer(request, lambda query: sim._aggs(request, query, path))

        @get("/v2/aggs/ticker/{ticker:str}/prev")
        async def previous_close(request: Request[Any, Any, Any], ticker: str) -> Response[bytes]:
            return await sim._answer(request, lambda query: sim._previous_close(ticker, query))

        @get("/v1/open-close/{ticker:str}/{day:str}")
        async def open_close(
            request: Request[Any, Any, Any], ticker: str, day: str
        ) -> Response[bytes]:
            return await sim._answer(request, lambda query: sim._open_close(ticker, day, query))

        @get("/v2/aggs/grouped/locale/{locale:str}/market/{market:str}/{day:str}")
        async def grouped(
            request: Request[Any, Any, Any], locale: str, market: str, day: str
        ) -> Response[bytes]:
            return await sim._answer(
                request, lambda query: sim._grouped(locale, market, day, query)
            )

        @get("/v3/reference/tickers/{ticker:str}")
        async def ticker_details(request: Request[Any, Any, Any], ticker: str) -> Response[bytes]:
            return await sim._answer(request, lambda query: sim._details(ticker))

        @get("/v3/reference/tickers")
        async def tickers(request: Request[Any, Any, Any]) -> Response[bytes]:
            return await sim._answer(request, lambda query: sim._tickers(request, query))

        @get("/v1/marketstatus/now")
        async def market_status(request: Request[Any, Any, Any]) -> Response[bytes]:
            return await sim._answer(
                request, lambda query: _json(reference.market_status(sim.now_s()))
            )

        @post("/_sim/faults", status_code=200)
        async def add_fault(request: Request[Any, Any, Any]) -> dict[str, int]:
            sim.faults.append(msgspec.json.decode(await request.body(), type=Fault))
            return {"queued": len(sim.faults)}

        @post("/_sim/reset", status_code=200)
        async def reset() -> dict[str, int]:
            sim.reset()
            return {"calls": 0}

        @get("/_sim/stats")
        async def stats() -> dict[str, Any]:
            return {"calls": sim.call_count, "paths": [c.path for c in sim.calls[-100:]]}

        handlers = [aggs, previous_close, open_close, grouped, ticker_details, tickers]
        handlers += [market_status, add_fault, reset, stats]
        return [Router(path="/polygon", route_handlers=handlers)]

    async def _answer(
        self,
        request: Request[Any, Any, Any],
        respond: Callable[[dict[str, str]], Response[bytes]],
    ) -> Response[bytes]:
        """Every endpoint: delay, scripted faults, the key, the per-minute limit, then ``respond``."""
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        query = dict(request.query_params.items())
        key = query.get("apiKey")
        auth = request.headers.get("authorization")
        if not key and auth and auth.lower().startswith("bearer "):
            key = auth[7:].strip()
        response = self._gate(key) or respond(query)
        shown = {k: ("***" if k == "apiKey" else v) for k, v in query.items()}
        self.calls.append(
            RecordedCall(
                path=request.url.path,
                query=shown,
                api_key=key,
                authorization=auth,
                status=response.status_code or 200,
                at=time.time(),
            )
        )
        return response

    def _gate(self, key: str | None) -> Response[bytes] | None:
        """The answer that comes before any data: a fault, a key refused, the limit hit."""
        if self.faults:
            fault = self.faults[0]
            fault.count -= 1
            if fault.count <= 0:
                self.faults.popleft()
            return _fault_response(fault)
        if not key:
            return _error(401, "ERROR", "API Key was not provided")
        if self.api_key is not None and key != self.api_key:
            return _error(401, "ERROR", "Unknown API Key")
        if self.calls_per_minute is not None:
            now = time.monotonic()
            while self._accepted and self._accepted[0] <= now - 60:
                self._accepted.popleft()
            if len(self._accepted) >= self.calls_per_minute:
                retry = math.ceil(self._accepted[0] + 60 - now)
                headers = {"Retry-After": str(max(retry, 1))} if self.send_retry_after else {}
                return _error(
                    429,
                    "ERROR",
                    "You've exceeded the maximum requests per minute, please wait or upgrade "
                    "your subscription to continue. https://polygon.io/pricing",
                    headers,
                )
            self._accepted.append(now)
        return None

    def _aggs(
        self, request: Request[Any, Any, Any], query: dict[str, str], path: _AggsPath
    ) -> Response[bytes]:
        ticker, multiplier, timespan, from_, to = (
            path.ticker,
            path.multiplier,
            path.timespan,
            path.from_,
            path.to,
        )
        try:
            cursor = _parse_request(query, multiplier, timespan, from_, to)
        except ValueError as exc:
            return _error(400, "ERROR", str(exc))
        from_ms = _bound(from_, end=False)
        to_ms = _bound(to, end=True)
        bars = self.bars(
            ticker, int(multiplier), timespan, from_ms, to_ms, adjusted=cursor.adjusted
        )
        if cursor.sort == "desc":
            bars.reverse()
        size = min(cursor.limit, self.max_page)
        cursor = _Cursor(
            offset=cursor.offset, limit=size, sort=cursor.sort, adjusted=cursor.adjusted
        )
        page = bars[cursor.offset : cursor.offset + size]
        body: dict[str, Any] = {
            "ticker": ticker,
            "queryCount": len(page),
            "resultsCount": len(page),
            "adjusted": cursor.adjusted,
        }
        if page:
            body["results"] = page
        body.update(status="OK", request_id=uuid.uuid4().hex, count=len(page))
        if cursor.offset + cursor.limit < len(bars):
            body["next_url"] = self._next_url(request, cursor)
        return Response(msgspec.json.encode(body), media_type=MediaType.JSON)

    # --- daily summaries and reference data ----------------------------------------

    def day_bar(self, ticker: str, day: date, *, adjusted: bool) -> dict[str, Any] | None:
        """The day bar of ``ticker`` on ``day`` (None on a weekend or for an unknown ticker)."""
        start = eastern_midnight_ms(day)
        found = self.bars(ticker, 1, "day", start, start, adjusted=adjusted)
        return found[0] if found else None

    def previous_session(self) -> date:
        """The last weekday before today (US Eastern): the day ``/prev`` answers with."""
        day = eastern_date(int(self.now_s() * 1000)) - timedelta(days=1)
        while day.weekday() >= 5:
            day -= timedelta(days=1)
        return day

    def _previous_close(self, ticker: str, query: dict[str, str]) -> Response[bytes]:
        adjusted = query.get("adjusted", "true").lower() != "false"
        bar = self.day_bar(ticker, self.previous_session(), adjusted=adjusted)
        results = [{"T": ticker, **bar}] if bar else []
        return _json(_aggs_envelope(results, adjusted, ticker=ticker))

    def _open_close(self, ticker: str, day: str, query: dict[str, str]) -> Response[bytes]:
        try:
            when = date.fromisoformat(day)
        except ValueError:
            return _error(400, "ERROR", f"Could not parse date: {day}")
        adjusted = query.get("adjusted", "true").lower() != "false"
        today = eastern_date(int(self.now_s() * 1000))
        bar = self.day_bar(ticker, when, adjusted=adjusted) if when <= today else None
        if bar is None:
            return _not_found("Data not found.")
        midnight = eastern_midnight_ms(when)
        factor = 2.0 if not adjusted and when < SPLIT_DAY else 1.0
        body = {
            "status": "OK",
            "from": when.isoformat(),
            "symbol": ticker,
            "open": bar["o"],
            "high": bar["h"],
            "low": bar["l"],
            "close": bar["c"],
            "volume": bar["v"],
            "preMarket": round(self._price(ticker, midnight + SESSION_OPENS_MS) * factor, 4),
            "afterHours": round(self._price(ticker, midnight + SESSION_CLOSES_MS) * factor, 4),
        }
        return _json(body)

    def _grouped(
        self, locale: str, market: str, day: str, query: dict[str, str]
    ) -> Response[bytes]:
        try:
            when = date.fromisoformat(day)
        except ValueError:
            return _error(400, "ERROR", f"Could not parse date: {day}")
        adjusted = query.get("adjusted", "true").lower() != "false"
        results: list[dict[str, Any]] = []
        today = eastern_date(int(self.now_s() * 1000))
        if (locale, market) == ("us", "stocks") and when <= today:
            for ticker in reference.TICKERS:
                bar = self.day_bar(ticker, when, adjusted=adjusted)
                if bar is not None:
                    results.append({"T": ticker, **bar})
        return _json(_aggs_envelope(results, adjusted))

    def _details(self, ticker: str) -> Response[bytes]:
        found = reference.details(ticker)
        if found is None:
            return _not_found("Ticker not found.")
        return _json({"results": found, "status": "OK", "request_id": uuid.uuid4().hex})

    def _tickers(self, request: Request[Any, Any, Any], query: dict[str, str]) -> Response[bytes]:
        if "cursor" in query:
            padded = query["cursor"] + "=" * (-len(query["cursor"]) % 4)
            try:
                query = msgspec.json.decode(base64.urlsafe_b64decode(padded), type=dict[str, str])
            except (ValueError, msgspec.DecodeError):
                return _error(400, "ERROR", "Invalid cursor")
        try:
            limit = int(query.get("limit", TICKERS_DEFAULT_LIMIT))
            offset = int(query.get("offset", "0"))
        except ValueError:
            return _error(400, "ERROR", "Invalid limit")
        limit = max(1, min(limit, TICKERS_MAX_LIMIT))
        rows = [row for t in reference.TICKERS if (row := reference.listed(t)) is not None]
        rows = [row for row in rows if _ticker_matches(row, query)]
        sort = query.get("sort", "ticker")
        if sort not in {"ticker", "name", "market", "locale", "primary_exchange", "type"}:
            return _error(400, "ERROR", f"Invalid sort field: {sort}")
        rows.sort(key=lambda row: str(row[sort]), reverse=query.get("order") == "desc")
        page = rows[offset : offset + limit]
        body: dict[str, Any] = {"results": page, "status": "OK", "request_id": uuid.uuid4().hex}
        body["count"] = len(page)
        if offset + limit < len(rows):
            following = {**query, "offset": str(offset + limit), "limit": str(limit)}
            following.pop("apiKey", None)
            token = base64.urlsafe_b64encode(msgspec.json.encode(following)).decode().rstrip("=")
            host = str(request.base_url).rstrip("/") + "/polygon"
            if self.next_url_host is not None:
                host = self.next_url_host.rstrip("/")
            body["next_url"] = f"{host}/v3/reference/tickers?cursor={token}"
        return _json(body)

    def _next_url(self, request: Request[Any, Any, Any], cursor: _Cursor) -> str:
        following = _Cursor(
            offset=cursor.offset + cursor.limit,
            limit=cursor.limit,
            sort=cursor.sort,
            adjusted=cursor.adjusted,
        )
        token = base64.urlsafe_b64encode(msgspec.json.encode(following.__dict__)).decode()
        path = request.url.path
        if self.next_url_host is not None:
            host = self.next_url_host.rstrip("/")
            path = path.removeprefix("/polygon")
        else:
            host = str(request.base_url).rstrip("/")
        return f"{host}{path}?cursor={token.rstrip('=')}"


def _json(body: dict[str, Any]) -> Response[bytes]:
    return Response(msgspec.json.encode(body), media_type=MediaType.JSON)


def _not_found(message: str) -> Response[bytes]:
    body = {"status": "NOT_FOUND", "request_id": uuid.uuid4().hex, "message": message}
    return Response(msgspec.json.encode(body), status_code=404, media_type=MediaType.JSON)


def _aggs_envelope(
    results: list[dict[str, Any]], adjusted: bool, *, ticker: str | None = None
) -> dict[str, Any]:
    """The aggregates answer around ``results``: ``ticker`` only for one ticker's bars."""
    body: dict[str, Any] = {} if ticker is None else {"ticker": ticker}
    body.update(queryCount=len(results), resultsCount=len(results), adjusted=adjusted)
    if results:
        body["results"] = results
    body.update(status="OK", request_id=uuid.uuid4().hex, count=len(results))
    return body


def _ticker_matches(row: dict[str, Any], query: dict[str, str]) -> bool:
    """``list_tickers`` filters: exact, ``.gt/.gte/.lt/.lte`` on the ticker, ``search``."""
    ticker = str(row["ticker"])
    checks: dict[str, Callable[[str], bool]] = {
        "ticker": lambda v: ticker == v,
        "ticker.gt": lambda v: ticker > v,
        "ticker.gte": lambda v: ticker >= v,
        "ticker.lt": lambda v: ticker < v,
        "ticker.lte": lambda v: ticker <= v,
        "type": lambda v: row["type"] == v,
        "market": lambda v: row["market"] == v,
        "exchange": lambda v: row["primary_exchange"] == v,
        "cik": lambda v: row["cik"] == v,
        "search": lambda v: v.lower() in ticker.lower() or v.lower() in str(row["name"]).lower(),
        "active": lambda v: (v.lower() != "false") == row["active"],
    }
    return all(check(query[name]) for name, check in checks.items() if name in query)


def _has_weekday(start: date, end: date) -> bool:
    return (end - start).days >= 3 or any(
        (start + timedelta(days=i)).weekday() < 5 for i in range((end - start).days)
    )


def _bound(raw: str, *, end: bool) -> int:
    if raw.isdigit():
        return int(raw)
    day = date.fromisoformat(raw)
    return eastern_midnight_ms(day + timedelta(days=1)) - 1 if end else eastern_midnight_ms(day)


def _parse_request(
    query: dict[str, str], multiplier: str, timespan: str, from_: str, to: str
) -> _Cursor:
    if not multiplier.isdigit() or int(multiplier) < 1:
        raise ValueError("Invalid multiplier")
    if timespan not in TIMESPANS:
        raise ValueError(f"Invalid timespan: {timespan}")
    for raw in (from_, to):
        if not raw.isdigit():
            try:
                date.fromisoformat(raw)
            except ValueError:
                raise ValueError(f"Could not parse date: {raw}") from None
    if "cursor" in query:
        padded = query["cursor"] + "=" * (-len(query["cursor"]) % 4)
        try:
            return _Cursor(**msgspec.json.decode(base64.urlsafe_b64decode(padded)))
        except (ValueError, TypeError, msgspec.DecodeError):
            raise ValueError("Invalid cursor") from None
    limit = int(query.get("limit", DEFAULT_LIMIT))
    return _Cursor(
        offset=0,
        limit=max(1, min(limit, MAX_LIMIT)),
        sort=query.get("sort", "asc"),
        adjusted=query.get("adjusted", "true").lower() != "false",
    )


def _error(
    status: int, polygon_status: str, message: str, headers: dict[str, str] | None = None
) -> Response[bytes]:
    body = {"status": polygon_status, "request_id": uuid.uuid4().hex, "error": message}
    return Response(
        msgspec.json.encode(body), status_code=status, media_type=MediaType.JSON, headers=headers
    )


def _fault_response(fault: Fault) -> Response[bytes]:
    headers = {} if fault.retry_after is None else {"Retry-After": f"{fault.retry_after:g}"}
    if fault.body == "html":
        page = f"<html><body><h1>{fault.status} Error</h1>nginx</body></html>"
        return Response(
            page.encode(), status_code=fault.status, media_type=MediaType.HTML, headers=headers
        )
    if fault.body == "garbage":
        return Response(b"{not json", status_code=fault.status, headers=headers)
    messages = {
        401: "Unknown API Key",
        429: "You've exceeded the maximum requests per minute, please wait or upgrade your "
        "subscription to continue.",
    }
    message = messages.get(fault.status, "Internal server error")
    status = "NOT_AUTHORIZED" if fault.status == 403 else "ERROR"
    return _error(fault.status, status, message, headers)


__all__ = ["EASTERN", "Fault", "PolygonSimulator", "RecordedCall"]
