"""The previous close without a call per ticker: from cached day bars or one grouped-daily call.

Polygon's ``/prev`` answers with a ticker's bar of the last session before
today (US Eastern).  That bar is already in the cache when

* the ticker's day-bar chunk of this year was fetched today (after the
  settle time): its last bar before today is the one; or
* the grouped daily bars of that session were fetched: every ticker's bar
  of the day in one answer, indexed by ticker when it arrives
  (``index_grouped``), so a watchlist of twenty tickers costs one call.

A weekday the grouped answer has no bars for is a holiday: the session
before it is looked at.  A ticker the grouped answer leaves out (an OTC or
illiquid one) falls back to Polygon's own ``/prev``, cached like any answer.
"""

from __future__ import annotations

import uuid
from datetime import date
from typing import TYPE_CHECKING

import msgspec

from ratesvc.stocks import keys
from ratesvc.stocks.docstore import FOREVER, Document
from ratesvc.stocks.models import Bar, CacheStatus, SeriesKey
from ratesvc.stocks.service import now_ms
from ratesvc.stocks.sessions import previous_weekday
from ratesvc.stocks.timegrid import eastern_date, eastern_midnight_ms

if TYPE_CHECKING:
    from ratesvc.stocks.endpoints import DocRequest
    from ratesvc.stocks.gateway import Answer, Gateway

MAX_HOLIDAYS = 4
"""Sessions looked back over when the grouped answers of weekdays are empty."""
COUNT_FIELD = "@"

_encode = msgspec.json.Encoder().encode


class _Tagged(msgspec.Struct):
    T: str


class _Grouped(msgspec.Struct):
    results: list[msgspec.Raw] = []


_decode_grouped = msgspec.json.Decoder(_Grouped).decode
_decode_tag = msgspec.json.Decoder(_Tagged).decode


def render(ticker: str, adjusted: bool, result: bytes) -> bytes:
    """Polygon's ``/prev`` answer around one bar (already carrying ``T``)."""
    return b"".join(
        [
            b'{"ticker":',
            _encode(ticker),
            b',"queryCount":1,"resultsCount":1,"adjusted":',
            b"true" if adjusted else b"false",
            b',"results":[',
            result,
            b'],"status":"OK","request_id":',
            _encode(uuid.uuid4().hex),
            b',"count":1}',
        ]
    )


async def previous_close(gateway: Gateway, request: DocRequest) -> Answer | None:
    from ratesvc.stocks.gateway import Answer  # noqa: PLC0415 - the two modules refer to each other

    ticker = request.ticker
    assert ticker is not None
    adjusted = request.flag("adjusted", default=True)
    now = now_ms()
    today = eastern_date(now)
    result = await _from_day_bars(gateway, ticker, adjusted, today, now)
    cache: CacheStatus = "HIT"
    if result is None:
        found = await _from_grouped(gateway, ticker, adjusted, today)
        if found is None:
            return None
        result, cache = found
    return Answer(200, render(ticker, adjusted, result), cache)


async def _from_day_bars(
    gateway: Gateway, ticker: str, adjusted: bool, today: date, now: int
) -> bytes | None:
    store = gateway.bars.store
    series = SeriesKey(ticker=ticker, multiplier=1, timespan="day", adjusted=adjusted)
    this_year = date(today.year, 1, 1)
    [stored] = await store.load(series, [this_year])
    midnight = eastern_midnight_ms(today)
    if stored is None or stored.fetched_ms < midnight + store.settle_ms:
        return None  # not fetched since the last session was settled: it may lack that bar
    before = [bar for bar in stored.bars() if bar.t < midnight]
    if not before:
        return None  # early January: the session before lies in last year's chunk
    return _tagged(ticker, before[-1])


def _tagged(ticker: str, bar: Bar) -> bytes:
    return b'{"T":' + _encode(ticker) + b"," + _encode(bar)[1:]


async def _from_grouped(
    gateway: Gateway, ticker: str, adjusted: bool, today: date
) -> tuple[bytes, CacheStatus] | None:
    from ratesvc.stocks.catalog import GROUPED  # noqa: PLC0415 - the catalog uses this module

    day = previous_weekday(today)
    for _ in range(MAX_HOLIDAYS + 1):
        index = keys.grouped_index_key(day.isoformat(), adjusted)
        count, bar = await gateway.redis.hmget(index, [COUNT_FIELD, ticker])
        cache: CacheStatus = "HIT"
        if count is None:
            grouped = GROUPED.request(
                {"date": day.isoformat()}, {} if adjusted else {"adjusted": "false"}
            )
            answer = await gateway.document(grouped)
            cache = answer.cache
            if answer.status != 200:
                return None
            if answer.cache in {"HIT", "STALE"}:
                # The grouped answer was cached but its index was evicted: rebuild it.
                await _write_index(gateway, grouped, answer.body, FOREVER)
            count, bar = await gateway.redis.hmget(index, [COUNT_FIELD, ticker])
            if count is None:
                return None
        if bar is not None:
            return (bar.encode() if isinstance(bar, str) else bytes(bar)), cache
        if int(count) > 0:
            return None  # a session without this ticker: Polygon's /prev knows better
        day = previous_weekday(day)  # no bars at all: a holiday
    return None


async def index_grouped(gateway: Gateway, request: DocRequest, document: Document) -> None:
    """After a grouped-daily fetch: each ticker's bar under the day, for ``previous_close``."""
    if document.status == 200:
        await _write_index(gateway, request, document.body, document.fresh_until_ms)


async def _write_index(
    gateway: Gateway, request: DocRequest, body: bytes, fresh_until_ms: int
) -> None:
    if request.flag("include_otc", default=False):
        return  # the previous close never includes OTC tickers unless asked
    try:
        results = _decode_grouped(body).results
        mapping = {_decode_tag(raw).T: bytes(raw) for raw in results}
    except msgspec.DecodeError:
        return
    mapping[COUNT_FIELD] = str(len(mapping)).encode()
    adjusted = request.flag("adjusted", default=True)
    index = keys.grouped_index_key(request.path["date"], adjusted)
    async with gateway.redis.pipeline(transaction=True) as pipe:
        pipe.delete(index)
        pipe.hset(index, mapping=mapping)  # type: ignore[arg-type]
        if fresh_until_ms < FOREVER:
            pipe.pexpireat(index, fresh_until_ms)
        await pipe.execute()
