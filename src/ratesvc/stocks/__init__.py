"""Stock bars and a Polygon gateway: a caching proxy in front of Polygon.io.

``GET /v1/stocks/aggs/{ticker}/range/{multiplier}/{timespan}/{from}/{to}`` and
Polygon's own path ``/v2/aggs/ticker/...`` answer in Polygon's shape, so
Polygon's clients work with their base URL pointed at ratesvc.  So do the
other endpoints a charting frontend calls (previous close, daily open/close,
grouped daily bars, ticker details and list, market status), each declared
once in ``catalog`` and served by ``gateway`` as whole cached documents
(``docstore``) through the same locks and budget.

How it saves upstream calls:

* ``timegrid``: series are cut into US Eastern calendar chunks (a day of
  second/minute bars, a month of hours, a year of days, a decade of weeks
  and coarser); a missing chunk is fetched with the other missing chunks of
  its block next to it (``fetch_block``), adjacent ones in one call.
* ``cache``/``chunk``: one Redis hash per series, one field per chunk, no TTL;
  freshness is decided on read, so expired bars still serve stale on error.
* ``coalesce``: a short Redis lock per chunk makes concurrent identical misses,
  in any replica, wait for one call.
* ``budget``: N calls per rolling window shared through Redis; users before
  the background ``refresher``; a 429 pauses every replica.
* ``purge``: ``ratesvc purge TICKER [--adjusted-only]`` after a split.
"""
