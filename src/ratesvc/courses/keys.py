"""Redis keys of the courses feature, in one place."""

QUOTES = "ratesvc:quotes"
"""Hash: ``source|market`` -> JSON Quote.  The latest price of every upstream market."""
BODY_PREFIX = "ratesvc:courses:body:"
"""String per pre-rendered answer shape: ``<valid_until_ms> <etag>\\n<json body>``."""
CHANGES = "ratesvc:courses:changes"
"""Pub/sub channel: the default answer's body, published whenever it changes."""
LEASE = "ratesvc:lease:exchanges"
"""Which replica runs the exchange connections."""


def body_key(shape: str) -> str:
    return BODY_PREFIX + shape
