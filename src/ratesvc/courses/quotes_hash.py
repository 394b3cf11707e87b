"""The ``ratesvc:quotes`` hash: one field per upstream market, the JSON of its latest Quote.

The lease holder's Redis sink writes it, warm start fills it from PostgreSQL,
and every process reads it whole (``reader.py``).  Encoding and decoding live
here together so the writers and the readers cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import msgspec
from redis.asyncio import Redis
from redis.typing import EncodableT, FieldT

from ratesvc.courses import keys
from ratesvc.log import get_logger
from ratesvc.models import Quote

log = get_logger("courses.quotes")

_encode = msgspec.json.Encoder(decimal_format="number").encode
_decode_quote = msgspec.json.Decoder(Quote).decode


def encode_quote(quote: Quote) -> bytes:
    return _encode(quote)


def encode_quotes(quotes: Mapping[str, Quote]) -> dict[FieldT, EncodableT]:
    """Fields and values for ``HSET keys.QUOTES``."""
    return {key: _encode(quote) for key, quote in quotes.items()}


def decode_quotes(raw: Mapping[bytes | str, bytes | str]) -> dict[str, Quote]:
    """The hash as read from Redis -> Quote per ``source|market`` (bad fields logged, skipped)."""
    quotes = {}
    for field, value in raw.items():
        try:
            quote = _decode_quote(value)
        except msgspec.ValidationError:
            log.warning("bad_quote_in_redis", field=field)
            continue
        quotes[quote.key] = quote
    return quotes


async def load_quotes(redis: Redis) -> dict[str, Quote]:
    return decode_quotes(await redis.hgetall(keys.QUOTES))


def newest_per_market(quotes: Iterable[Quote]) -> dict[str, Quote]:
    """The newest quote per market (older ones of the same market add nothing)."""
    newest: dict[str, Quote] = {}
    for quote in quotes:
        seen = newest.get(quote.key)
        if seen is None or quote.observed_at >= seen.observed_at:
            newest[quote.key] = quote
    return newest


def newer_than(candidates: Iterable[Quote], known: Mapping[str, Quote]) -> dict[str, Quote]:
    """The candidates strictly newer than what ``known`` holds for their market."""
    newer: dict[str, Quote] = {}
    for quote in candidates:
        seen = newer.get(quote.key) or known.get(quote.key)
        if seen is None or quote.observed_at > seen.observed_at:
            newer[quote.key] = quote
    return newer
