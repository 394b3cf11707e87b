"""ratesvc: a market-data gateway for crypto rates, stock bars and event counts."""

__version__ = "0.1.0"
