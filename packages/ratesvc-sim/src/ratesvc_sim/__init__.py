"""Simulators of Binance, CoinGecko and Polygon that speak the real protocols.

They let ratesvc run end to end with no internet and no API keys
(``ratesvc simulate``, or ``RATESVC_SIMULATE=1 ratesvc serve`` as ``make demo``
runs it), and they are what the tests, benchmarks and load test talk to over
real sockets.  A package of their own, next to ratesvc in the repository, so
that the service's wheel and image carry none of it unless asked for.
"""
