"""Supervisor for background tasks: restart with capped, equal-jitter backoff; isolation.

One task's crash never takes down the app or the other tasks.  Each task's
state is kept for ``/v1/ready`` and ``/metrics``.

A store outage (Redis or PostgreSQL unreachable) is not a bug: such a failure
is logged as a WARNING without a traceback, and its restart delay stays at
most ``transient_max_delay_s``, so the task is back within a couple of
seconds of the store, however long the outage lasted, without spinning hot.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from typing import Literal

import msgspec

from ratesvc.log import get_logger
from ratesvc.retry import STORE_ERRORS, backoff_delays

log = get_logger("supervisor")

TaskStatus = Literal["starting", "running", "restarting", "stopped"]


class TaskState(msgspec.Struct, kw_only=True):
    """What ``/v1/ready`` shows of one background task."""

    name: str
    status: TaskStatus = "starting"
    restarts: int = 0
    last_error: str | None = None
    last_error_at: float | None = None
    started_at: float | None = None


class Supervisor:
    """Owns named long-running coroutines; restarts each one when it fails."""

    def __init__(
        self,
        *,
        initial_delay_s: float = 0.5,
        max_delay_s: float = 30.0,
        healthy_after_s: float = 60.0,
        transient: tuple[type[BaseException], ...] = STORE_ERRORS,
        transient_max_delay_s: float = 2.0,
    ) -> None:
        self._initial_delay_s = initial_delay_s
        self._max_delay_s = max_delay_s
        self._healthy_after_s = healthy_after_s
        self._transient = transient
        self._transient_max_delay_s = transient_max_delay_s
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self.states: dict[str, TaskState] = {}

    def start(self, name: str, run: Callable[[], Awaitable[None]]) -> None:
        """Run ``run()`` forever under supervision; ``run`` should not return."""
        if name in self._tasks:
            raise ValueError(f"task {name!r} is already supervised")
        self.states[name] = TaskState(name=name)
        self._tasks[name] = asyncio.create_task(self._supervise(name, run), name=name)

    async def _supervise(self, name: str, run: Callable[[], Awaitable[None]]) -> None:
        state = self.states[name]
        task_log = log.bind(task=name)
        delays = backoff_delays(self._initial_delay_s, self._max_delay_s)
        while True:
            started = time.monotonic()
            state.status = "running"
            state.started_at = time.time()
            transient = False
            try:
                await run()
                error = "task returned"
                task_log.warning("task_returned")
            except asyncio.CancelledError:
                state.status = "stopped"
                raise
            except Exception as exc:  # noqa: BLE001 - isolation is the supervisor's job
                error = f"{type(exc).__name__}: {exc}"
                transient = isinstance(exc, self._transient)
                if transient:
                    task_log.warning("task_interrupted_store_unavailable", error=error)
                else:
                    task_log.error("task_failed", error=error, exc_info=exc)
            if time.monotonic() - started >= self._healthy_after_s:
                delays = backoff_delays(self._initial_delay_s, self._max_delay_s)
            delay = next(delays)
            if transient:
                delay = min(delay, self._transient_max_delay_s)
            state.status = "restarting"
            state.restarts += 1
            state.last_error = error
            state.last_error_at = time.time()
            task_log.info("task_restarting", delay_s=round(delay, 3), restarts=state.restarts)
            await asyncio.sleep(delay)

    async def stop(self, names: list[str] | None = None, grace_s: float = 5.0) -> None:
        """Cancel the named tasks (all by default) and wait for them, at most ``grace_s``."""
        chosen = [n for n in (list(self._tasks) if names is None else names) if n in self._tasks]
        tasks = [self._tasks.pop(n) for n in chosen]
        for task in tasks:
            task.cancel()
        if tasks:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(grace_s):
                    await asyncio.gather(*tasks, return_exceptions=True)
        for name in chosen:
            self.states[name].status = "stopped"

    @property
    def names(self) -> list[str]:
        """The tasks under supervision now, in the order they were started."""
        return list(self._tasks)

    @property
    def total_restarts(self) -> int:
        return sum(state.restarts for state in self.states.values())
