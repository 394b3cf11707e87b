"""Calls to Polygon: an aggregates range (following ``next_url`` pages), or one document.

The API key goes only here, in an ``Authorization: Bearer`` header (what
Polygon's own client sends), re-added to every ``next_url`` page (Polygon
leaves it out).  A header keeps the key out of every URL, so no access log,
proxy log or exception text that shows a URL can show the key.  The host of
``next_url`` is not trusted: only its path from ``/v2/`` on and its query are
kept and sent to the configured base URL.
"""

from __future__ import annotations

import email.utils
import math
import re
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import date
from urllib.parse import parse_qsl, quote, urlencode, urlsplit

import httpx
import msgspec

from ratesvc.log import get_logger
from ratesvc.redact import scrub
from ratesvc.stocks.errors import UpstreamError, UpstreamFailure
from ratesvc.stocks.metrics import StocksStats
from ratesvc.stocks.models import Bar, PolygonAggsPage, PolygonErrorBody, SeriesKey

log = get_logger("stocks.upstream")

PAGE_LIMIT = 50_000
MAX_PAGES = 50
MAX_RETRY_AFTER_S = 600.0
_API_PATH = re.compile(r"/v[0-9]+/")

_decode_page = msgspec.json.Decoder(PolygonAggsPage).decode
_decode_error = msgspec.json.Decoder(PolygonErrorBody).decode

AcquireSlot = Callable[[], Awaitable[None]]
"""Waits for (or refuses with UpstreamError) one call in the shared budget."""


class FetchedRange(msgspec.Struct, frozen=True):
    bars: list[Bar]
    status: str
    calls: int


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header (delta seconds or an HTTP date), capped."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            moment = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        seconds = moment.timestamp() - time.time()
    if math.isnan(seconds):  # "NaN" parses as a float; it would slip past min and max
        return None
    return min(max(seconds, 0.0), MAX_RETRY_AFTER_S)


class PolygonClient:
    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        base_url: str,
        api_key: str,
        timeout_s: float,
        stats: StocksStats,
    ) -> None:
        self.http = http
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key
        self.timeout = httpx.Timeout(timeout_s, connect=min(timeout_s, 5.0))
        self.stats = stats
        self._auth = {"Authorization": f"Bearer {api_key}"} if api_key else {}

    def range_url(self, series: SeriesKey, first_day: date, last_day: date) -> str:
        ticker = quote(series.ticker, safe=":.-_")
        return (
            f"{self.base_url}/v2/aggs/ticker/{ticker}/range/{series.multiplier}/"
            f"{series.timespan}/{first_day.isoformat()}/{last_day.isoformat()}"
        )

    def _follow(self, next_url: str) -> tuple[str, list[tuple[str, str]]]:
        """``next_url`` rebased on our base URL, its query kept, the key left for us to add."""
        path, query = _api_path_and_query(next_url)
        return self.base_url + path, query

    def local_next_url(self, next_url: str) -> str:
        """``next_url`` as a path and query on this service: the host dropped, no key."""
        path, query = _api_path_and_query(next_url)
        return f"{path}?{urlencode(query)}" if query else path

    async def fetch_range(
        self, series: SeriesKey, first_day: date, last_day: date, acquire: AcquireSlot
    ) -> FetchedRange:
        """Every bar of ``series`` on the Eastern days ``first_day..last_day``, ascending."""
        url = self.range_url(series, first_day, last_day)
        query: list[tuple[str, str]] = [
            ("adjusted", "true" if series.adjusted else "false"),
            ("sort", "asc"),
            ("limit", str(PAGE_LIMIT)),
        ]
        bars: list[Bar] = []
        status = "OK"
        calls = 0
        while True:
            await acquire()
            calls += 1
            page = await self._get_page(series, first_day, last_day, url, query)
            bars.extend(bar.to_bar() for bar in page.results or ())
            if page.status != "OK":
                status = page.status
            if not page.next_url:
                break
            if calls >= MAX_PAGES:
                raise UpstreamError(
                    UpstreamFailure(kind="unavailable", detail="Polygon sent too many pages")
                )
            url, query = self._follow(page.next_url)
        return FetchedRange(bars=bars, status=status, calls=calls)

    async def fetch_document(
        self, endpoint: str, path: str, query: Sequence[tuple[str, str]], acquire: AcquireSlot
    ) -> tuple[int, bytes]:
        """One call to ``path`` (Polygon's, from ``/v1/`` on): its status (200 or 404) and body.

        A 404 with Polygon's JSON error body is an answer (no such day or
        ticker), passed on and cached like any other.
        """
        await acquire()
        where = {"endpoint": endpoint, "path": path}
        response = await self._send(where, self.base_url + path, query, passthrough=404)
        return response.status_code, response.content

    async def _get_page(
        self,
        series: SeriesKey,
        first_day: date,
        last_day: date,
        url: str,
        query: list[tuple[str, str]],
    ) -> PolygonAggsPage:
        where = {
            "endpoint": "aggs",
            "ticker": series.ticker,
            "range": f"{series.multiplier}/{series.timespan}/{first_day}/{last_day}",
        }
        started = time.perf_counter()
        response = await self._send(where, url, query)
        try:
            page = _decode_page(response.content)
        except msgspec.DecodeError:
            self._fail("unavailable", where, started, status=response.status_code)
            raise UpstreamError(
                UpstreamFailure(kind="unavailable", detail="Polygon sent an unreadable answer")
            ) from None
        if page.status in {"ERROR", "NOT_AUTHORIZED"}:
            # Some plans answer "not entitled" with a 200 and this status.
            self._fail("not_entitled", where, started, status=response.status_code)
            raise UpstreamError(
                UpstreamFailure(kind="not_entitled", detail="Polygon refused this data range")
            )
        self.stats.upstream_calls[("aggs", "ok")] += 1
        log.debug(
            "polygon_page",
            **where,
            bars=len(page.results or ()),
            more=bool(page.next_url),
            ms=round((time.perf_counter() - started) * 1000, 1),
        )
        return page

    async def _send(
        self,
        where: dict[str, str],
        url: str,
        query: Sequence[tuple[str, str]],
        passthrough: int | None = None,
    ) -> httpx.Response:
        """GET with the service's key; a transport failure or refusal becomes UpstreamError."""
        started = time.perf_counter()
        try:
            response = await self.http.get(
                url, params=tuple(query), headers=self._auth, timeout=self.timeout
            )
        except httpx.TimeoutException:
            self._fail("timeout", where, started)
            raise UpstreamError(
                UpstreamFailure(kind="timeout", detail="Polygon did not answer in time")
            ) from None
        except httpx.HTTPError as exc:
            self._fail("unavailable", where, started, error=type(exc).__name__)
            raise UpstreamError(
                UpstreamFailure(kind="unavailable", detail="Polygon could not be reached")
            ) from None
        if (
            passthrough is not None
            and response.status_code == passthrough
            and _decode_error_or_none(response.content) is not None
        ):
            self.stats.upstream_calls[(where["endpoint"], "ok")] += 1
            return response
        failure = self._classify(response)
        if failure is not None:
            self._fail(failure.kind, where, started, status=response.status_code)
            raise UpstreamError(failure)
        if passthrough is not None:
            self.stats.upstream_calls[(where["endpoint"], "ok")] += 1
        return response

    def _fail(self, kind: str, where: dict[str, str], started: float, **extra: object) -> None:
        self.stats.upstream_calls[(where["endpoint"], kind)] += 1
        ms = round((time.perf_counter() - started) * 1000, 1)
        log.warning("polygon_call_failed", kind=kind, ms=ms, **where, **extra)

    def _classify(self, response: httpx.Response) -> UpstreamFailure | None:
        code = response.status_code
        if code == 200:
            return None
        message = self._error_text(response)
        if code == 429:
            return UpstreamFailure(
                kind="rate_limited",
                detail="Polygon's rate limit was reached; retry later",
                retry_after_s=parse_retry_after(response.headers.get("Retry-After")),
            )
        if code == 401 or (code == 403 and "key" in message.lower()):
            return UpstreamFailure(
                kind="key_refused",
                detail="Polygon refused the service's upstream API key "
                "(check RATESVC_POLYGON_API_KEY)",
            )
        if code == 403:
            detail = "Polygon refused this data for the service's plan"
            return UpstreamFailure(
                kind="not_entitled", detail=f"{detail}: {message}" if message else detail
            )
        if code == 400 and message:
            return UpstreamFailure(
                kind="rejected", detail=f"Polygon rejected the request: {message}"
            )
        return UpstreamFailure(
            kind="unavailable", detail=f"Polygon answered with HTTP {code}; try again later"
        )

    def _error_text(self, response: httpx.Response) -> str:
        """Polygon's own error message if the body is its JSON error shape, else ''."""
        try:
            body = _decode_error(response.content)
        except msgspec.DecodeError:
            return ""  # an HTML error page or a proxy's text: nothing worth repeating
        text = body.error or body.message or ""
        return scrub(text, (self.api_key,))[:300]


def _decode_error_or_none(content: bytes) -> PolygonErrorBody | None:
    try:
        return _decode_error(content)
    except msgspec.DecodeError:
        return None


def _api_path_and_query(next_url: str) -> tuple[str, list[tuple[str, str]]]:
    """The API path (from ``/v1/``, ``/v2/``, ``/v3/`` on) and query of an upstream URL, no key."""
    parts = urlsplit(next_url)
    found = _API_PATH.search(parts.path)
    if found is None:
        raise UpstreamError(
            UpstreamFailure(kind="unavailable", detail="Polygon sent an unusable next_url")
        )
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != "apiKey"]
    return parts.path[found.start() :], query
