"""CoinGecko poller: ``/simple/price`` at a polite interval -> quotes.

CoinGecko refreshes these prices about once a minute on free plans, so
polling faster gains nothing; the default interval (30 s) keeps a keyless
client well under its per-IP limit.  A 429 is honoured with its Retry-After,
and an HTML error page (Cloudflare) is treated like any other bad answer.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from email.utils import parsedate_to_datetime

import httpx
import msgspec

from ratesvc.courses.directions import coingecko_currencies, coingecko_ids
from ratesvc.log import get_logger
from ratesvc.models import Quote, is_valid_price
from ratesvc.supervisor import backoff_delays

log = get_logger("courses.coingecko", upstream="coingecko")

# {"bitcoin": {"usd": 67187.33, "rub": 6200000.1, "last_updated_at": 1711356300}}
CoinGeckoSimplePrice = dict[str, dict[str, Decimal | None]]
_decode = msgspec.json.Decoder(CoinGeckoSimplePrice).decode
MAX_RETRY_AFTER_S = 3600.0


def parse_simple_price(body: bytes, received_at: datetime) -> list[Quote]:
    """Quotes from a ``/simple/price`` body; raises ValueError for a body of another shape."""
    try:
        coins = _decode(body)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise ValueError(f"not a /simple/price answer: {exc}") from None
    quotes = []
    for coin, prices in coins.items():
        for currency, value in prices.items():
            if currency == "last_updated_at" or "_" in currency or value is None:
                continue
            if not is_valid_price(value):
                log.warning("price_rejected", market=f"{coin}/{currency}", value=str(value)[:40])
                continue
            quotes.append(
                Quote(
                    source="coingecko",
                    market=f"{coin}/{currency}",
                    value=value,
                    observed_at=received_at,
                )
            )
    return quotes


def retry_after_s(header: str | None, default_s: float) -> float:
    """``Retry-After`` as seconds (delta-seconds or an HTTP date), bounded."""
    if not header:
        return default_s
    try:
        return min(MAX_RETRY_AFTER_S, max(0.0, float(header)))
    except ValueError:
        pass
    try:
        moment = parsedate_to_datetime(header)
    except (TypeError, ValueError):
        return default_s
    return min(MAX_RETRY_AFTER_S, max(0.0, (moment - datetime.now(UTC)).total_seconds()))


async def run_coingecko(
    *,
    base_url: str,
    api_key: str,
    http: httpx.AsyncClient,
    offer: Callable[[Quote], object],
    interval_s: float,
    timeout_s: float = 10.0,
) -> None:
    """Poll forever; never raises for upstream trouble, only waits longer."""
    url = f"{base_url.rstrip('/')}/simple/price"
    params = {
        "ids": ",".join(coingecko_ids()),
        "vs_currencies": ",".join(coingecko_currencies()),
        "include_last_updated_at": "true",
        "precision": "full",
    }
    headers = {"x-cg-demo-api-key": api_key} if api_key else {}
    failures = backoff_delays(min(interval_s, 5.0), max(interval_s, 300.0))
    while True:
        delay = interval_s
        try:
            response = await http.get(url, params=params, headers=headers, timeout=timeout_s)
        except httpx.HTTPError as exc:
            delay = max(interval_s, next(failures))
            log.warning("poll_failed", error=type(exc).__name__, retry_in_s=round(delay, 1))
        else:
            if response.status_code == 429:
                delay = max(interval_s, retry_after_s(response.headers.get("retry-after"), 60.0))
                log.warning("rate_limited", retry_in_s=round(delay, 1))
            elif response.status_code != 200:
                delay = max(interval_s, next(failures))
                log.warning("poll_failed", status=response.status_code, retry_in_s=round(delay, 1))
            else:
                try:
                    quotes = parse_simple_price(response.content, datetime.now(UTC))
                except ValueError as exc:
                    delay = max(interval_s, next(failures))
                    log.warning("bad_payload", error=str(exc)[:200], retry_in_s=round(delay, 1))
                else:
                    failures = backoff_delays(min(interval_s, 5.0), max(interval_s, 300.0))
                    log.debug("polled", quotes=len(quotes))
                    for quote in quotes:
                        offer(quote)
        await asyncio.sleep(delay)
