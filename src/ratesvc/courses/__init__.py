"""Crypto rates: /v1/courses fed by Binance and CoinGecko."""
