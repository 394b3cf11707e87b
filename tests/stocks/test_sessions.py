"""Session arithmetic, and Polygon's market status telling a holiday from a session."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import msgspec
from redis.asyncio import Redis

from ratesvc.stocks.catalog import OPEN_CLOSE
from ratesvc.stocks.docstore import FOREVER, DocStore, Document
from ratesvc.stocks.sessions import (
    MARKET_STATUS_DOC,
    Sessions,
    previous_close_changes_ms,
    previous_weekday,
)
from ratesvc.stocks.timegrid import EASTERN, eastern_midnight_ms

HOLIDAY = date(2024, 7, 4)  # a Thursday the exchanges are closed


def eastern_ms(day: date, hour: int) -> int:
    return int(datetime(day.year, day.month, day.day, hour, tzinfo=EASTERN).timestamp() * 1000)


async def store_market(docs: DocStore, market: str, now_ms: int) -> None:
    body = msgspec.json.encode({"market": market, "serverTime": "-"})
    await docs.save(MARKET_STATUS_DOC, Document(now_ms, now_ms + 30_000, 200, body))


def test_previous_weekday_and_when_the_previous_close_moves() -> None:
    monday, saturday = date(2024, 7, 1), date(2024, 7, 6)
    assert previous_weekday(monday) == date(2024, 6, 28)
    assert previous_weekday(saturday) == date(2024, 7, 5)
    # Saturday's and Sunday's previous close is Friday's until Monday has passed.
    assert previous_close_changes_ms(eastern_ms(saturday, 12)) == eastern_midnight_ms(
        date(2024, 7, 9)
    )
    assert previous_close_changes_ms(eastern_ms(monday, 9)) == eastern_midnight_ms(date(2024, 7, 2))


async def test_a_closed_market_in_session_hours_makes_today_final(redis: Redis) -> None:
    docs = DocStore(redis)
    sessions = Sessions(docs, settle_s=3600)
    request = OPEN_CLOSE.request({"ticker": "AAPL", "date": HOLIDAY.isoformat()}, {})
    morning = eastern_ms(HOLIDAY, 10)

    await store_market(docs, "open", morning)
    open_until = await OPEN_CLOSE.freshness.fresh_until(request, morning, sessions)
    await store_market(docs, "closed", morning)
    closed_until = await OPEN_CLOSE.freshness.fresh_until(request, morning, sessions)
    after_midnight = eastern_ms(HOLIDAY + timedelta(days=1), 0) + 1_800_000
    night_until = await OPEN_CLOSE.freshness.fresh_until(request, after_midnight, sessions)

    assert open_until == morning + 60_000  # a session day: today's summary changes
    assert closed_until == eastern_midnight_ms(HOLIDAY + timedelta(days=1)) + 3_600_000
    assert await sessions.closed_all_day(HOLIDAY, eastern_ms(HOLIDAY, 21)) is False
    assert night_until != FOREVER  # not settled until an hour after midnight
    settled = eastern_ms(HOLIDAY + timedelta(days=1), 1)
    assert await OPEN_CLOSE.freshness.fresh_until(request, settled, sessions) == FOREVER
