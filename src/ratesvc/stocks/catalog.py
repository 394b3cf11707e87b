"""Every Polygon endpoint the gateway forwards, one declaration each (see endpoints.py).

Anything else under Polygon's paths is a 404 from the router: no route, so
no upstream call and no budget spent.  The aggregates have their own route
(routes.py), since they are cached by series and chunk, not by document.
"""

from __future__ import annotations

from ratesvc.stocks.endpoints import ClosedDayForever, Endpoint, Ttl, UntilPreviousCloseMoves
from ratesvc.stocks.prevclose import index_grouped, previous_close

TODAY_TTL_S = 60.0
"""Today's daily summaries change with every trade; a minute is what the bars allow too."""

LIST_TICKERS_PARAMS = (
    "ticker", "ticker.gt", "ticker.gte", "ticker.lt", "ticker.lte", "type", "market",
    "exchange", "cusip", "cik", "date", "search", "active", "sort", "order", "limit", "cursor",
)  # fmt: skip

PREVIOUS_CLOSE = Endpoint(
    "prev",
    "/v2/aggs/ticker/{ticker}/prev",
    ("adjusted",),
    UntilPreviousCloseMoves(),
    local=previous_close,
    summary="Previous close of a ticker (from cached day bars or grouped daily bars)",
)
OPEN_CLOSE = Endpoint(
    "open_close",
    "/v1/open-close/{ticker}/{date}",
    ("adjusted",),
    ClosedDayForever(today_s=TODAY_TTL_S),
    summary="Open, close, pre-market and after-hours prices of a ticker on a day",
)
GROUPED = Endpoint(
    "grouped",
    "/v2/aggs/grouped/locale/us/market/stocks/{date}",
    ("adjusted", "include_otc"),
    ClosedDayForever(today_s=TODAY_TTL_S),
    after_fetch=index_grouped,
    summary="Day bars of every US stock on a day",
)
TICKER_DETAILS = Endpoint(
    "ticker_details",
    "/v3/reference/tickers/{ticker}",
    ("date",),
    Ttl(24 * 3600.0),
    summary="Reference details of a ticker",
)
TICKERS = Endpoint(
    "tickers",
    "/v3/reference/tickers",
    LIST_TICKERS_PARAMS,
    Ttl(3600.0),
    paged=True,
    summary="List of tickers (paged: next_url points back here)",
)
MARKET_STATUS = Endpoint(
    "market_status",
    "/v1/marketstatus/now",
    (),
    Ttl(30.0),
    summary="Whether US markets are open now",
)

ENDPOINTS = (PREVIOUS_CLOSE, OPEN_CLOSE, GROUPED, TICKER_DETAILS, TICKERS, MARKET_STATUS)
