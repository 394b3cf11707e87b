"""Built-in upstream simulators that speak the real Binance, CoinGecko and Polygon protocols.

They let ratesvc run end to end with no internet and no API keys
(``ratesvc simulate`` or ``RATESVC_SIMULATE=1``), and they are what the tests
and load tests talk to over real sockets.
"""
