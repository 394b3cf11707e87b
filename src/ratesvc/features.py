"""How a feature (courses, stocks, events) plugs into the app.

A feature brings routes and, at start-up, may add sinks to the drainer and
start supervised tasks.  ``app.py`` lists the features; nothing else knows them.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from litestar.types import ControllerRouterHandler

from ratesvc.services import Services


@dataclass(frozen=True)
class Feature:
    name: str
    routes: Sequence[ControllerRouterHandler] = ()
    start: Callable[[Services], Awaitable[None]] | None = None
    """Runs after the stores are connected and before requests are served."""
    stop: Callable[[Services], Awaitable[None]] | None = None
    """Runs at shutdown after the sources stopped and before the queue is flushed."""
