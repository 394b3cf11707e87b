"""Redis keys of the stocks feature, in one place.

A series id is ``TICKER|multiplier|timespan|a`` (``a`` adjusted, ``u`` not);
a chunk is named by its first US Eastern day, ``YYYY-MM-DD``.
"""

from __future__ import annotations

BARS_PREFIX = "ratesvc:stocks:bars:"
"""Hash per series: chunk -> CachedChunk (header line + bars JSON), and ``@version`` -> the
token of its last write.  No TTL (see cache.py)."""
LOCK_PREFIX = "ratesvc:stocks:lock:"
"""String per chunk (``series|chunk``) or document being fetched: the owner's token.
TTL: a fetch's worst case."""
FAILURE_PREFIX = "ratesvc:stocks:failed:"
"""String per chunk or document whose fetch just failed: the failure, for waiters.  TTL 5 s."""
RECENT = "ratesvc:stocks:recent"
"""Sorted set: series id -> last time (ms) a request touched its open session."""
BUDGET_CALLS = "ratesvc:stocks:budget:calls"
"""Sorted set of upstream calls in the current window (score: Redis time in ms)."""
BUDGET_WAITING = "ratesvc:stocks:budget:waiting"
"""Set while a user request waits for a slot; background refreshes stand back."""
BUDGET_PAUSED = "ratesvc:stocks:budget:paused_until"
"""Redis time (ms) before which nobody calls Polygon, after a 429."""


def bars_key(series_id: str) -> str:
    return BARS_PREFIX + series_id


def ticker_pattern(ticker: str) -> str:
    """SCAN pattern for every series hash of ``ticker`` (glob characters escaped)."""
    return f"{BARS_PREFIX}{_escape(ticker)}|*"


DOC_PREFIX = "ratesvc:stocks:doc:"
"""String per cached Polygon document (see docstore.py): ``TICKER|endpoint|path?query``
for one ticker's documents, ``@endpoint|path?query`` for the others (``@`` starts no ticker)."""
GROUPED_INDEX_PREFIX = "ratesvc:stocks:grouped:"
"""Hash per grouped-daily document (``date|a/u``): ticker -> its bar; ``@`` -> bar count."""


def doc_name(ticker: str | None, endpoint: str, rest: str) -> str:
    """A document's name, also the suffix of its lock and failure keys."""
    return f"{ticker}|{endpoint}|{rest}" if ticker is not None else f"@{endpoint}|{rest}"


def doc_key(name: str) -> str:
    return DOC_PREFIX + name


def doc_ticker_pattern(ticker: str) -> str:
    """SCAN pattern for every document of ``ticker``."""
    return f"{DOC_PREFIX}{_escape(ticker)}|*"


def grouped_index_key(day: str, adjusted: bool) -> str:
    return f"{GROUPED_INDEX_PREFIX}{day}|{'a' if adjusted else 'u'}"


def _escape(text: str) -> str:
    return "".join("\\" + ch if ch in "*?[]\\" else ch for ch in text)
