"""The registry of sources: unique names, each source's own staleness limit, failover order."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from ratesvc.config import load_settings
from ratesvc.courses.directions import BY_NAME
from ratesvc.courses.plugin import DEFAULT_SOURCES
from ratesvc.courses.rates import Pricing
from ratesvc.courses.sources import Freshness, Sources
from ratesvc.models import Quote

from .kestrel import Kestrel

NOW = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)


def test_a_source_not_in_the_registry_is_never_fresh() -> None:
    freshness = Freshness({"binance": 10.0, "coingecko": 180.0})
    assert freshness.limit("coingecko") == timedelta(seconds=180)
    assert freshness.limit("kraken") == timedelta(0)  # not CoinGecko's 180 s


def test_each_source_brings_its_own_limit() -> None:
    settings = load_settings({}, env_file=None)
    sources = Sources([*DEFAULT_SOURCES, Kestrel("ws://unused", stale_after_s=2.5)])
    assert sources.freshness(settings).limits_s == {
        "binance": settings.stale_after_s,
        "coingecko": settings.coingecko_stale_after_s,
        "kestrel": 2.5,
    }


def test_source_names_are_unique() -> None:
    with pytest.raises(ValueError, match="unique"):
        Sources([*DEFAULT_SOURCES, DEFAULT_SOURCES[0]])


def test_rates_come_in_registry_order_with_each_sources_rule() -> None:
    sources = Sources([Kestrel("ws://unused", stale_after_s=1.0), *DEFAULT_SOURCES])
    pricing = Pricing(sources, Freshness({"kestrel": 1.0, "binance": 10.0, "coingecko": 180.0}))
    quotes = {
        q.key: q
        for q in (
            Quote(source="kestrel", market="BTC/USD", value=Decimal("67250.5"), observed_at=NOW),
            Quote(source="binance", market="BTCUSDT", value=Decimal("67200"), observed_at=NOW),
            Quote(
                source="coingecko", market="bitcoin/usd", value=Decimal("67100"), observed_at=NOW
            ),
        )
    }
    rates = pricing.rates(quotes, [BY_NAME["BTC-USD"], BY_NAME["BTC-RUB"]])
    assert [(r.direction, r.source, r.value) for r in rates] == [
        ("BTC-USD", "kestrel", Decimal("67250.5")),
        ("BTC-USD", "binance", Decimal("67200")),
        ("BTC-USD", "coingecko", Decimal("67100")),
    ]  # BTC-RUB: Kestrel quotes no RUB, Binance lacks its legs, CoinGecko its market
    assert rates[0].fresh_until == NOW + timedelta(seconds=1)
    assert pricing.order == ("kestrel", "binance", "coingecko")
