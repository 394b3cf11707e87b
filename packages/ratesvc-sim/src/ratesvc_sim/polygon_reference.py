"""The Polygon simulator's reference data and daily summaries, in Polygon's shapes.

Where each shape comes from (field names and order, never invented):

* ``/v2/aggs/ticker/{T}/prev``: the official client's test fixture
  ``test_rest/mocks/v2/aggs/ticker/AAPL/prev.json`` (polygon-io/client-python):
  the aggregates envelope with one bar that also carries ``T``.
* ``/v2/aggs/grouped/locale/us/market/stocks/{date}``: the client's
  ``GroupedDailyAgg.from_dict`` (``T o h l c v vw t n otc``) inside the
  aggregates envelope (``queryCount``, ``resultsCount``, ``adjusted``,
  ``results``, ``status``, ``request_id``, ``count``).
* ``/v1/open-close/{T}/{date}``: massive.com/docs/rest/stocks/aggregates/
  daily-ticker-summary (``status from symbol open high low close volume
  preMarket afterHours``) and the client's ``DailyOpenCloseAgg.from_dict``.
* ``/v3/reference/tickers/{T}`` and ``/v3/reference/tickers``: the client's
  fixtures ``test_rest/mocks/v3/reference/tickers/AAPL.json`` and
  ``tickers.json`` (``results``, ``status``, ``request_id``, ``count``,
  ``next_url`` with an opaque ``cursor``).
* ``/v1/marketstatus/now``: massive.com/docs/rest/stocks/market-operations/
  market-status and the client's ``MarketStatus.from_dict`` (``afterHours
  currencies earlyHours exchanges indicesGroups market serverTime``).

Not confirmed from a primary source: the exact 404 texts ("Data not found.",
"Ticker not found.") and ``NOT_FOUND`` as their status.
"""

from __future__ import annotations

import hashlib
from datetime import date, datetime
from typing import Any

from ratesvc.stocks.timegrid import EASTERN

# (ticker, name, primary exchange, type): the universe the simulator lists and
# groups.  Other upper-case tickers still have bars, as unlisted symbols do.
UNIVERSE: tuple[tuple[str, str, str, str], ...] = (
    ("AAPL", "Apple Inc.", "XNAS", "CS"),
    ("ABNB", "Airbnb, Inc. Class A Common Stock", "XNAS", "CS"),
    ("ADBE", "Adobe Inc.", "XNAS", "CS"),
    ("AMD", "Advanced Micro Devices", "XNAS", "CS"),
    ("AMZN", "Amazon.com, Inc.", "XNAS", "CS"),
    ("AVGO", "Broadcom Inc.", "XNAS", "CS"),
    ("BA", "Boeing Company", "XNYS", "CS"),
    ("BAC", "Bank of America Corporation", "XNYS", "CS"),
    ("BRK.B", "Berkshire Hathaway Inc. Class B", "XNYS", "CS"),
    ("COST", "Costco Wholesale Corp", "XNAS", "CS"),
    ("CRM", "Salesforce, Inc.", "XNYS", "CS"),
    ("CSCO", "Cisco Systems, Inc.", "XNAS", "CS"),
    ("DIA", "SPDR Dow Jones Industrial Average ETF Trust", "ARCX", "ETF"),
    ("DIS", "Walt Disney Company", "XNYS", "CS"),
    ("GOOG", "Alphabet Inc. Class C", "XNAS", "CS"),
    ("GOOGL", "Alphabet Inc. Class A", "XNAS", "CS"),
    ("HD", "Home Depot, Inc.", "XNYS", "CS"),
    ("IBM", "International Business Machines", "XNYS", "CS"),
    ("INTC", "Intel Corporation", "XNAS", "CS"),
    ("IWM", "iShares Russell 2000 ETF", "ARCX", "ETF"),
    ("JNJ", "Johnson & Johnson", "XNYS", "CS"),
    ("JPM", "JPMorgan Chase & Co.", "XNYS", "CS"),
    ("KO", "Coca-Cola Company", "XNYS", "CS"),
    ("LLY", "Eli Lilly and Company", "XNYS", "CS"),
    ("MA", "Mastercard Incorporated", "XNYS", "CS"),
    ("META", "Meta Platforms, Inc. Class A", "XNAS", "CS"),
    ("MSFT", "Microsoft Corp", "XNAS", "CS"),
    ("NFLX", "Netflix, Inc.", "XNAS", "CS"),
    ("NKE", "Nike, Inc.", "XNYS", "CS"),
    ("NVDA", "Nvidia Corp", "XNAS", "CS"),
    ("ORCL", "Oracle Corp", "XNYS", "CS"),
    ("PEP", "PepsiCo, Inc.", "XNAS", "CS"),
    ("PFE", "Pfizer Inc.", "XNYS", "CS"),
    ("PG", "Procter & Gamble Company", "XNYS", "CS"),
    ("QQQ", "Invesco QQQ Trust, Series 1", "XNAS", "ETF"),
    ("SPY", "SPDR S&P 500 ETF Trust", "ARCX", "ETF"),
    ("T", "AT&T Inc.", "XNYS", "CS"),
    ("TSLA", "Tesla, Inc.", "XNAS", "CS"),
    ("UNH", "UnitedHealth Group Incorporated", "XNYS", "CS"),
    ("V", "Visa Inc.", "XNYS", "CS"),
    ("VZ", "Verizon Communications", "XNYS", "CS"),
    ("WMT", "Walmart Inc.", "XNYS", "CS"),
    ("XOM", "Exxon Mobil Corp", "XNYS", "CS"),
)
_BY_TICKER = {row[0]: row for row in UNIVERSE}
TICKERS = tuple(row[0] for row in UNIVERSE)
LAST_UPDATED = "2024-06-28T00:00:00Z"


def _number(ticker: str, salt: str, modulo: int) -> int:
    digest = hashlib.blake2b(f"{salt}:{ticker}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") % modulo


def _identifiers(ticker: str) -> dict[str, Any]:
    return {
        "cik": f"{_number(ticker, 'cik', 10**10):010d}",
        "composite_figi": f"BBG{_number(ticker, 'figi', 10**9):09d}",
        "share_class_figi": f"BBG{_number(ticker, 'share', 10**9):09d}",
    }


def listed(ticker: str) -> dict[str, Any] | None:
    """A ticker as ``/v3/reference/tickers`` lists it, in the fixture's key order."""
    row = _BY_TICKER.get(ticker)
    if row is None:
        return None
    symbol, name, exchange, kind = row
    ids = _identifiers(symbol)
    return {
        "ticker": symbol,
        "name": name,
        "market": "stocks",
        "locale": "us",
        "primary_exchange": exchange,
        "type": kind,
        "active": True,
        "currency_name": "usd",
        "cik": ids["cik"],
        "composite_figi": ids["composite_figi"],
        "share_class_figi": ids["share_class_figi"],
        "last_updated_utc": LAST_UPDATED,
    }


def details(ticker: str) -> dict[str, Any] | None:
    """``/v3/reference/tickers/{ticker}``'s ``results``, in the fixture's key order."""
    row = listed(ticker)
    if row is None:
        return None
    shares = 10**8 + _number(ticker, "shares", 16 * 10**9)
    listed_on = date(1980 + _number(ticker, "ipo", 40), 1 + _number(ticker, "m", 12), 1)
    result = {k: v for k, v in row.items() if k != "last_updated_utc"}
    result.update(
        market_cap=float(shares * (20 + _number(ticker, "price", 400))),
        description=f"{row['name']} (simulated reference data).",
        ticker_root=ticker.split(".", maxsplit=1)[0],
        list_date=listed_on.isoformat(),
        share_class_shares_outstanding=shares,
        weighted_shares_outstanding=shares - _number(ticker, "weighted", 10**7),
    )
    return result


def market_status(now_s: float) -> dict[str, Any]:
    """``/v1/marketstatus/now`` on the US Eastern weekday calendar (no holidays).

    Early hours 04:00-09:30, open 09:30-16:00, after hours 16:00-20:00.
    """
    moment = datetime.fromtimestamp(now_s, EASTERN)
    minutes = moment.hour * 60 + moment.minute
    weekday = moment.weekday() < 5
    early = weekday and 4 * 60 <= minutes < 9 * 60 + 30
    regular = weekday and 9 * 60 + 30 <= minutes < 16 * 60
    after = weekday and 16 * 60 <= minutes < 20 * 60
    market = "open" if regular else "extended-hours" if early or after else "closed"
    exchange = "open" if regular else "extended-hours" if early or after else "closed"
    index_state = "open" if regular else "closed"
    return {
        "afterHours": after,
        "currencies": {"crypto": "open", "fx": "closed" if moment.weekday() == 5 else "open"},
        "earlyHours": early,
        "exchanges": {"nasdaq": exchange, "nyse": exchange, "otc": exchange},
        "indicesGroups": {
            "s_and_p": index_state,
            "societe_generale": index_state,
            "msci": index_state,
            "ftse_russell": index_state,
            "mstar": index_state,
            "mstarc": index_state,
            "cccy": "open",
            "nasdaq": index_state,
            "dow_jones": index_state,
        },
        "market": market,
        "serverTime": moment.isoformat(timespec="seconds"),
    }
