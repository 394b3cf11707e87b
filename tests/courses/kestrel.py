"""A third exchange for the tests, in one module, as a real one would be added.

"Kestrel" streams ``{"pair": "BTC/USD", "last": "67250.5"}`` frames over a
websocket and quotes USD only, so it prices the ``X-USD`` directions and
leaves RUB to the others.  Nothing in ``ratesvc.courses`` names it: it is
registered by passing it to ``CoursesPlugin``.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal

import httpx
import msgspec

from ratesvc.config import Settings
from ratesvc.courses.directions import Direction
from ratesvc.courses.sources import Offer, Priced
from ratesvc.courses.websocket import stream_forever
from ratesvc.log import get_logger
from ratesvc.models import Quote, is_valid_price

NAME = "kestrel"
log = get_logger("courses.kestrel", upstream=NAME)


class KestrelTicker(msgspec.Struct):
    """``{"pair": "BTC/USD", "last": "67250.5"}``"""

    pair: str
    last: Decimal


_decode = msgspec.json.Decoder(KestrelTicker).decode


class Kestrel:
    name = NAME

    def __init__(self, ws_url: str, *, stale_after_s: float) -> None:
        self.ws_url = ws_url
        self.limit_s = stale_after_s

    def stale_after_s(self, settings: Settings) -> float:
        del settings  # a real exchange would read its own RATESVC_ key
        return self.limit_s

    def markets(self, direction: Direction) -> tuple[str, ...]:
        if direction.quote != "USD":
            return ()
        return (f"{NAME}|{direction.asset}/USD",)

    def price(self, direction: Direction, quotes: Mapping[str, Quote]) -> Priced | None:
        markets = self.markets(direction)
        quote = quotes.get(markets[0]) if markets else None
        return None if quote is None else Priced(quote.value, (quote,))

    async def run(self, settings: Settings, http: httpx.AsyncClient, offer: Offer) -> None:
        del settings, http

        def on_frame(raw: str | bytes) -> None:
            try:
                ticker = _decode(raw)
            except (msgspec.DecodeError, msgspec.ValidationError):
                log.warning("frame_skipped")
                return
            if is_valid_price(ticker.last):
                offer(
                    Quote(
                        source=NAME,
                        market=ticker.pair,
                        value=ticker.last,
                        observed_at=datetime.now(UTC),
                    )
                )

        await stream_forever(
            self.ws_url,
            on_frame,
            log=log,
            silence_s=5.0,
            reconnect_min_s=0.05,
            reconnect_max_s=0.2,
        )
