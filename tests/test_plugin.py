"""Feature plugins: typed state by injection and by ``state_of``, start and stop in order."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from litestar import get
from litestar.di import NamedDependency
from litestar.testing import AsyncTestClient
from litestar.types import ControllerRouterHandler

from ratesvc.app import create_app
from ratesvc.config import Settings
from ratesvc.models import Quote
from ratesvc.plugin import FeaturePlugin, state_of
from ratesvc.services import Services

NOW = datetime.now(UTC)


@dataclass
class FirstState:
    greeting: str
    written: list[object] = field(default_factory=list)


@dataclass
class SecondState:
    first: FirstState


@get("/test/first", sync_to_thread=False)
def first_route(first_state: NamedDependency[FirstState]) -> dict[str, str]:
    return {"greeting": first_state.greeting}


class FirstPlugin(FeaturePlugin[FirstState]):
    """Adds a sink and a supervised source; records what happens in ``log``."""

    name = "first"
    state_type = FirstState

    def __init__(self, log: list[str]) -> None:
        self.log = log

    def route_handlers(self) -> Sequence[ControllerRouterHandler]:
        return [first_route]

    async def start(self, services: Services) -> FirstState:
        state = FirstState("hello")
        plugin_log = self.log

        class Sink:
            name = "first"

            async def write(self, batch: Sequence[object]) -> None:
                plugin_log.append(f"sink wrote {len(batch)}")
                state.written.extend(batch)

        services.sinks.append(Sink())

        async def source() -> None:
            try:
                await asyncio.Event().wait()
            finally:
                plugin_log.append("first source stopped")
                # Offered while stopping: the core must still drain it into the sink.
                services.queue.offer(
                    Quote(source="first", market="X", value=Decimal(1), observed_at=NOW)
                )

        services.supervisor.start("first-source", source)
        self.log.append("first started")
        return state

    async def stop(self, services: Services, state: FirstState) -> None:
        assert services.supervisor.states["first-source"].status == "stopped"
        self.log.append("first stopped")


class SecondPlugin(FeaturePlugin[SecondState]):
    """Needs the first feature: takes its plugin and reads its state, typed."""

    name = "second"
    state_type = SecondState

    def __init__(self, log: list[str], first: FirstPlugin) -> None:
        self.log = log
        self.first = first

    async def start(self, services: Services) -> SecondState:
        self.log.append("second started")
        return SecondState(first=self.first.state)

    async def stop(self, services: Services, state: SecondState) -> None:
        self.log.append("second stopped")


async def test_plugins_start_in_order_share_typed_state_and_stop_in_reverse(
    settings: Settings,
) -> None:
    log: list[str] = []
    first = FirstPlugin(log)
    app = create_app(settings, plugins=[first, SecondPlugin(log, first)])
    async with AsyncTestClient(app) as client:
        assert log == ["first started", "second started"]
        assert state_of(app, SecondState).first is first.state
        response = await client.get("/test/first")
        assert response.json() == {"greeting": "hello"}
    assert log == [
        "first started",
        "second started",
        "second stopped",
        "first source stopped",
        "first stopped",
        "sink wrote 1",  # the queue is drained after every feature stopped
    ]
    with pytest.raises(RuntimeError, match="not running"):
        state_of(app, FirstState)


def test_one_plugin_instance_serves_one_app(settings: Settings) -> None:
    plugin = FirstPlugin([])
    create_app(settings, plugins=[plugin])
    with pytest.raises(RuntimeError, match="one FirstPlugin per app"):
        create_app(settings, plugins=[plugin])


def test_state_of_a_feature_the_app_does_not_run(settings: Settings) -> None:
    app = create_app(settings, plugins=[FirstPlugin([])])
    with pytest.raises(LookupError, match="no feature of this app keeps a SecondState"):
        state_of(app, SecondState)


def test_state_of_a_subclassed_plugin(settings: Settings) -> None:
    class Quieter(FirstPlugin):
        """Inherits ``state_type``: still the plugin that keeps FirstState."""

    plugin = Quieter([])
    app = create_app(settings, plugins=[plugin])
    plugin._state = FirstState("set by hand; no lifespan runs here")
    assert state_of(app, FirstState) is plugin.state


def test_one_state_type_belongs_to_one_plugin_class() -> None:
    with pytest.raises(TypeError, match="FirstState is already the state of FirstPlugin"):

        class Impostor(FeaturePlugin[FirstState]):
            name = "impostor"
            state_type = FirstState
