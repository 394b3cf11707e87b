"""Redis names used by the events feature (one place, so the README and code agree)."""

from __future__ import annotations

STREAM = "ratesvc:events:stream"
"""Accepted events not yet written to PostgreSQL; one entry per accepted request."""
GROUP = "ratesvc-events-drainers"
"""The consumer group all replicas' drainers share; each entry goes to one of them."""
ENTRY_FIELD = b"e"
"""Stream entry field holding the JSON array of the request's validated events."""
COUNTS = "ratesvc:events:counts"
"""Hash event_type -> count; a copy of PostgreSQL's event_counts, only ever raised."""
COMPLETE = "#complete"
"""Field of COUNTS written with a rebuild from PostgreSQL (not a valid event type).

It lives and dies with the hash, so its absence means Redis lost the counters
(restarted empty, flushed, the key deleted or evicted) and they must be rebuilt;
until then a count is read from PostgreSQL."""
DEAD_LETTERS = "ratesvc:events:dead"
"""Stream of entries PostgreSQL refused (should stay empty), with the error, for inspection."""
