"""A guard for loops around redis-py calls."""

from __future__ import annotations

import asyncio


def raise_if_cancelling() -> None:
    """Re-raise a cancellation that a Redis call swallowed.

    redis-py's asyncio client can lose a ``CancelledError`` that lands while it
    opens a connection (redis/redis-py#2028): the call then completes as if
    nothing happened and a ``while True`` loop would never stop.  The task
    still records the request (``cancelling()``), so loops check it each turn.
    """
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError
