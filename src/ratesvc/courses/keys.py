"""Redis keys of the courses feature, in one place."""

QUOTES = "ratesvc:quotes"
"""Hash: ``source|market`` -> JSON Quote.  The latest price of every upstream market."""
CHANGES = "ratesvc:courses:changes"
"""Pub/sub channel: the default answer's body, published whenever it changes."""
LEASE = "ratesvc:lease:exchanges"
"""Which replica runs the exchange connections."""


HISTORY_CHUNK_PREFIX = "ratesvc:history:chunk:"
"""String per closed chunk of history points: ``<generation> <points, one JSON per line>``."""
HISTORY_GENERATION_PREFIX = "ratesvc:history:gen:"
"""Integer per (direction, source): bumped when a closed minute is written late."""


def history_chunk_key(direction: str, source: str, interval: str, start_ms: int) -> str:
    return f"{HISTORY_CHUNK_PREFIX}{direction}:{source}:{interval}:{start_ms}"


def history_generation_key(direction: str, source: str) -> str:
    return f"{HISTORY_GENERATION_PREFIX}{direction}:{source}"
