"""TEMPORARY: the old ``Feature`` record and its adapter onto ``FeaturePlugin``.

Delete this module once courses and stocks are ``FeaturePlugin`` subclasses
(see ``ratesvc.plugin``); ``create_app`` wraps any ``Feature`` it is given in a
``LegacyFeaturePlugin`` until then.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from litestar.types import ControllerRouterHandler

from ratesvc.plugin import FeaturePlugin
from ratesvc.services import Services


@dataclass(frozen=True)
class Feature:
    name: str
    routes: Sequence[ControllerRouterHandler] = ()
    start: Callable[[Services], Awaitable[None]] | None = None
    """Runs after the stores are connected and before requests are served."""
    stop: Callable[[Services], Awaitable[None]] | None = None
    """Runs at shutdown after the sources stopped and before the queue is flushed."""


class _NoState:
    """A legacy feature keeps its state in ``Services.extras``, not in its plugin."""


class LegacyFeaturePlugin(FeaturePlugin[_NoState]):
    """A ``Feature`` run as a plugin: same routes, same start and stop."""

    state_type = _NoState

    def __init__(self, feature: Feature) -> None:
        self.feature = feature
        self.name = feature.name

    def route_handlers(self) -> Sequence[ControllerRouterHandler]:
        return self.feature.routes

    async def start(self, services: Services) -> _NoState:
        if self.feature.start is not None:
            await self.feature.start(services)
        return _NoState()

    async def stop(self, services: Services, state: _NoState) -> None:
        if self.feature.stop is not None:
            await self.feature.stop(services)
