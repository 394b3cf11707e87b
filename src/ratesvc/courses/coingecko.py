"""CoinGecko poller: ``/simple/price`` at a polite interval -> quotes.

CoinGecko refreshes these prices about once a minute on free plans, so
polling faster gains nothing; the default interval (30 s) keeps a keyless
client well under its per-IP limit.  A 429 is honoured with its Retry-After,
and an HTML error page (Cloudflare) is treated like any other bad answer.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from decimal import Decimal
from email.utils import parsedate_to_datetime

import httpx
import msgspec

from ratesvc.config import Settings
from ratesvc.courses.directions import Direction, coingecko_currencies, coingecko_ids
from ratesvc.courses.sources import Offer, Priced
from ratesvc.log import get_logger
from ratesvc.models import Quote, is_valid_price
from ratesvc.retry import backoff_delays

NAME = "coingecko"
log = get_logger("courses.coingecko", upstream=NAME)

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
                    source=NAME,
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


FAILURE_JITTER = 0.2
"""Retries after a failure stay within 80-100% of their ceiling (one poller per deployment)."""
REFUSED_MAX_S = 300.0
"""A 4xx other than 408/429 (key refused, IP blocked by the CDN) does not heal in seconds."""
NO_RETRY_AFTER_S = 60.0
"""Wait after a 429 that says nothing about when to come back."""


async def run_coingecko(
    *,
    base_url: str,
    api_key: str,
    http: httpx.AsyncClient,
    offer: Offer,
    interval_s: float,
    retry_max_s: float = 4.0,
    timeout_s: float = 10.0,
) -> None:
    """Poll forever; never raises for upstream trouble, only waits longer.

    After a failure the next call does not wait for the poll interval: the
    prices are needed (the RUB legs of Binance's cross rates come from here),
    so 5xx, timeouts and bad bodies are retried with a backoff capped at
    ``retry_max_s``, which brings CoinGecko back within that long of it
    answering again, however long the trouble lasted.  At the default 4 s
    (retries 3.2-4 s apart) that is at most 19 calls a minute, inside the Demo
    plan's 100 (about 30 in older docs).  A 429 is the rate limit speaking: the next call waits for its
    Retry-After, and never comes sooner than a failure retry would.
    """
    url = f"{base_url.rstrip('/')}/simple/price"
    params = {
        "ids": ",".join(coingecko_ids()),
        "vs_currencies": ",".join(coingecko_currencies()),
        "include_last_updated_at": "true",
        "precision": "full",
    }
    headers = {"x-cg-demo-api-key": api_key} if api_key else {}

    def fresh_failures() -> Iterator[float]:
        return backoff_delays(min(interval_s, retry_max_s), retry_max_s, jitter=FAILURE_JITTER)

    def fresh_refusals() -> Iterator[float]:
        return backoff_delays(min(interval_s, 5.0), max(interval_s, REFUSED_MAX_S))

    failures, refusals = fresh_failures(), fresh_refusals()
    while True:
        delay = interval_s
        try:
            response = await http.get(url, params=params, headers=headers, timeout=timeout_s)
        except httpx.HTTPError as exc:
            delay = next(failures)
            log.warning("poll_failed", error=type(exc).__name__, retry_in_s=round(delay, 1))
        else:
            status = response.status_code
            if status == 429:
                wait_s = retry_after_s(response.headers.get("retry-after"), NO_RETRY_AFTER_S)
                delay = max(wait_s, next(failures))
                log.warning("rate_limited", retry_in_s=round(delay, 1))
            elif status >= 500 or status == 408:
                delay = next(failures)
                log.warning("poll_failed", status=status, retry_in_s=round(delay, 1))
            elif status != 200:
                delay = next(refusals)
                log.warning("poll_failed", status=status, retry_in_s=round(delay, 1))
            else:
                try:
                    quotes = parse_simple_price(response.content, datetime.now(UTC))
                except ValueError as exc:
                    delay = next(failures)
                    log.warning("bad_payload", error=str(exc)[:200], retry_in_s=round(delay, 1))
                else:
                    failures, refusals = fresh_failures(), fresh_refusals()
                    log.debug("polled", quotes=len(quotes))
                    for quote in quotes:
                        offer(quote)
        await asyncio.sleep(delay)


class CoinGecko:
    """The CoinGecko source: ``<coin id>/<usd|rub>`` markets, one per direction."""

    name = NAME

    def stale_after_s(self, settings: Settings) -> float:
        return settings.coingecko_stale_after_s

    def markets(self, direction: Direction) -> tuple[str, ...]:
        return (f"{NAME}|{direction.coingecko_id}/{direction.quote.lower()}",)

    def price(self, direction: Direction, quotes: Mapping[str, Quote]) -> Priced | None:
        quote = quotes.get(self.markets(direction)[0])
        return None if quote is None else Priced(quote.value, (quote,))

    async def run(self, settings: Settings, http: httpx.AsyncClient, offer: Offer) -> None:
        await run_coingecko(
            base_url=settings.coingecko_url,
            api_key=settings.coingecko_api_key,
            http=http,
            offer=offer,
            interval_s=settings.coingecko_poll_interval_s,
            retry_max_s=settings.coingecko_retry_max_s,
        )


COINGECKO = CoinGecko()
