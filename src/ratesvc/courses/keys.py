"""Redis keys of the courses feature, in one place."""

QUOTES = "ratesvc:quotes"
"""Hash: ``source|market`` -> JSON Quote.  The latest price of every upstream market."""
CHANGES = "ratesvc:courses:changes"
"""Pub/sub channel: the default answer's body, published whenever it changes."""
LEASE = "ratesvc:lease:exchanges"
"""Which replica runs the exchange connections."""
