"""When US stock sessions happen: the weekday calendar, corrected by Polygon's market status.

A session runs on a weekday from 04:00 to 20:00 US Eastern (pre- and
after-market included, as Polygon's bars are).  The calendar alone does not
know holidays; a cached ``/v1/marketstatus/now`` answer saying the market is
closed during session hours on a weekday does, and is used where it matters
(today's daily summaries stop changing).  Reading it never calls Polygon.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

import msgspec

from ratesvc.stocks.docstore import DocStore
from ratesvc.stocks.timegrid import EASTERN, eastern_date, eastern_midnight_ms

SESSION_OPENS_H = 4
SESSION_CLOSES_H = 20
MARKET_STATUS_DOC = "@market_status|"
"""The market-status document's name (see keys.doc_name)."""


class _MarketStatus(msgspec.Struct):
    market: str = ""


_decode_status = msgspec.json.Decoder(_MarketStatus).decode


def previous_weekday(day: date) -> date:
    day -= timedelta(days=1)
    while day.weekday() >= 5:
        day -= timedelta(days=1)
    return day


def previous_close_changes_ms(now_ms: int) -> int:
    """When the previous close (the last weekday before today) next moves on.

    At the Eastern midnight that ends the next weekday, counting today.
    """
    day = eastern_date(now_ms)
    while day.weekday() >= 5:
        day += timedelta(days=1)
    return eastern_midnight_ms(day + timedelta(days=1))


class Sessions:
    def __init__(self, docs: DocStore, *, settle_s: float) -> None:
        self.docs = docs
        self.settle_ms = int(settle_s * 1000)

    def settled(self, day: date, now_ms: int) -> bool:
        """True once ``day`` is over and its late trades are in: its summaries are final."""
        return now_ms >= eastern_midnight_ms(day + timedelta(days=1)) + self.settle_ms

    async def closed_all_day(self, day: date, now_ms: int) -> bool:
        """True when ``day`` is today and Polygon says the market is closed in session hours."""
        moment = datetime.fromtimestamp(now_ms / 1000, EASTERN)
        if moment.date() != day or day.weekday() >= 5:
            return False
        if not SESSION_OPENS_H <= moment.hour < SESSION_CLOSES_H:
            return False
        status = await self.docs.load(MARKET_STATUS_DOC)
        if status is None or not status.is_fresh(now_ms) or status.status != 200:
            return False
        try:
            return _decode_status(status.body).market == "closed"
        except msgspec.DecodeError:
            return False
