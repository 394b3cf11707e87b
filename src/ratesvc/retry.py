"""The one retry rule: what counts as transient, and how long to wait before the next try.

Every loop that retries (the supervisor's restarts, the upstream reconnects and
polls, the sinks' writes, start-up's connection to PostgreSQL) draws its waits
from ``backoff_delays``.  Loops that run forever keep the iterator and start a
fresh one after a success, so the next failure begins at the first delay again;
a call that is retried a bounded number of times uses ``retry``.

Why not stamina: its waits grow by ``wait_exp_base`` and add a jitter of at most
``wait_jitter`` seconds, fine for one call, but our long-running loops need a
delay sequence they can reset on success, which stamina does not expose; two
rules would come back.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable, Iterator
from typing import TypeVar

import asyncpg
from redis.exceptions import RedisError

from ratesvc.log import get_logger

log = get_logger("retry")

T = TypeVar("T")

STORE_ERRORS: tuple[type[BaseException], ...] = (
    RedisError,
    OSError,
    TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.CannotConnectNowError,
)
"""Failures that mean a store is unreachable, not that the caller is broken."""

EQUAL_JITTER = 0.5
FULL_JITTER = 1.0


def backoff_delays(
    initial_s: float = 0.5,
    cap_s: float = 30.0,
    factor: float = 2.0,
    *,
    jitter: float = EQUAL_JITTER,
) -> Iterator[float]:
    """Exponential delays, capped, each drawn from the top ``jitter`` share of its ceiling.

    The n-th ceiling is ``min(cap_s, initial_s * factor**n)``; the n-th delay is
    uniform in ``[ceiling * (1 - jitter), ceiling]``.  The default, 0.5, is "equal
    jitter" (half of each ceiling fixed, half random): clients that failed together
    do not retry in step, and none retries sooner than half its ceiling.  1.0 is
    "full jitter" (uniform in ``[0, ceiling]``); a smaller value keeps the delays
    close to the ceiling, which bounds the attempt rate more tightly.
    """
    if not 0.0 <= jitter <= 1.0:
        raise ValueError(f"jitter must be within [0, 1], not {jitter}")
    ceiling = min(initial_s, cap_s)
    while True:
        yield random.uniform(ceiling * (1 - jitter), ceiling)  # noqa: S311 - jitter, not crypto
        ceiling = min(cap_s, ceiling * factor)


async def retry(
    call: Callable[[], Awaitable[T]],
    *,
    on: tuple[type[BaseException], ...],
    attempts: int,
    delays: Iterator[float],
    what: str,
) -> T:
    """``await call()``, again after the next of ``delays`` when it raises one of ``on``.

    The last attempt's exception propagates; anything not in ``on`` propagates at
    once.  Each retry is logged once (``<what>_retry``) with the attempt and delay.
    """
    for attempt in range(1, attempts):
        try:
            return await call()
        except on as exc:
            delay = next(delays)
            log.warning(f"{what}_retry", attempt=attempt, delay_s=round(delay, 3), error=repr(exc))
            await asyncio.sleep(delay)
    return await call()
