"""How a feature (courses, stocks, events, ...) plugs into the app: a Litestar plugin.

A feature subclasses ``FeaturePlugin[ItsState]`` and gives:

* ``name`` - short and unique, e.g. ``"events"``;
* ``state_type`` - the class of its state, kept in ``<feature>/state.py``
  (e.g. ``EventsState``), so that its routes can import the type without
  importing the plugin (which imports the routes);
* ``route_handlers()`` - its routes;
* ``async start(services) -> state`` - build the state from the shared
  ``Services`` (connected stores, HTTP client, queue, supervisor), add sinks,
  metric sources and readiness checks there, start supervised tasks;
* optionally ``async stop(services, state)``.

Handlers get the state by dependency injection under ``<name>_state``::

    @get("/v1/stats/{event_type:str}")
    async def get_stats(event_type: str, events_state: NamedDependency[EventsState]) -> ...

(``litestar.di.NamedDependency``: Litestar 3 no longer infers dependencies.)

Raw ASGI code, which has no dependency injection, asks the app:
``state_of(scope["app"], EventsState)``.  A feature that needs another one's
state takes that plugin in its constructor and reads its ``.state`` in
``start``.  All of it is typed; there is no shared ``dict[str, Any]`` between
features.

Life cycle.  The core lifespan (``app.py``) runs outermost: it connects the
stores, applies migrations, builds ``Services`` and starts the drainer.  Each
plugin's lifespan runs inside it, in the order the plugins were given, so a
plugin may use the state of the plugins before it.  At shutdown they exit in
reverse: for each plugin the supervised tasks its ``start`` began are stopped
first (so its sources stop), then its ``stop`` runs; after the last one the core
drains the queue into the sinks, stops the drainer and closes the connections.

One plugin instance serves one app: it holds the state of that app's run.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar

from litestar.di import Provide
from litestar.plugins import InitPluginProtocol

from ratesvc.log import get_logger

if TYPE_CHECKING:
    from litestar import Litestar
    from litestar.config.app import AppConfig
    from litestar.types import ControllerRouterHandler

    from ratesvc.services import Services

log = get_logger("plugin")

StateT = TypeVar("StateT")


class FeaturePlugin(InitPluginProtocol, Generic[StateT]):
    """Base of every feature: routes, a lifespan, and typed state for the handlers."""

    name: str
    """Unique; the handlers' dependency is ``<name>_state``."""
    state_type: type[StateT]
    """The class of the state ``start`` returns (declared in ``<feature>/state.py``);
    one plugin class per state type, which is how ``state_of`` finds the plugin."""

    _state: StateT | None = None
    _by_state_type: ClassVar[dict[type[Any], type[FeaturePlugin[Any]]]] = {}
    """Each state type's plugin class, so ``state_of`` is two dict lookups on a hot path."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        state_type = cls.__dict__.get("state_type")
        if state_type is None:
            return
        known = FeaturePlugin._by_state_type.setdefault(state_type, cls)
        if known.__qualname__ != cls.__qualname__ or known.__module__ != cls.__module__:
            raise TypeError(f"{state_type.__name__} is already the state of {known.__name__}")
        FeaturePlugin._by_state_type[state_type] = cls  # the same class, defined again

    _app_initialised: bool = False

    def __init__(self, *, raw: bool = True) -> None:
        self.raw = raw
        """False builds the routes without their raw ASGI layers: only the documented
        Litestar handlers answer (the tests that compare both forms of each route)."""

    def route_handlers(self) -> Sequence[ControllerRouterHandler]:
        """The feature's routes (none by default)."""
        return ()

    async def start(self, services: Services) -> StateT:
        """Build the state and start the feature's supervised tasks."""
        raise NotImplementedError

    async def stop(self, services: Services, state: StateT) -> None:
        """Release what ``start`` took; runs after the feature's supervised tasks stopped."""

    @property
    def dependency(self) -> str:
        return f"{self.name}_state"

    @property
    def state(self) -> StateT:
        """The state of the running app (``RuntimeError`` outside its lifespan)."""
        if self._state is None:
            raise RuntimeError(f"the {self.name} feature is not running")
        return self._state

    def on_app_init(self, app_config: AppConfig) -> AppConfig:
        if self._app_initialised:
            raise RuntimeError(f"one {type(self).__name__} per app: it holds that app's state")
        self._app_initialised = True
        app_config.route_handlers.extend(self.route_handlers())
        app_config.dependencies[self.dependency] = Provide(self._provide, sync_to_thread=False)
        app_config.lifespan.append(self._lifespan)
        return app_config

    def _provide(self) -> Any:  # Any: Litestar models the signature, and StateT is not a type
        return self.state

    @asynccontextmanager
    async def _lifespan(self, app: Litestar) -> AsyncIterator[None]:
        services = services_of(app)
        supervisor = services.supervisor
        before = set(supervisor.names)
        state = await self.start(services)
        self._state = state
        started = [name for name in supervisor.names if name not in before]
        log.info("feature_started", feature=self.name, tasks=started)
        try:
            yield
        finally:
            await supervisor.stop(started, grace_s=services.settings.shutdown_grace_s)
            try:
                await self.stop(services, state)
            finally:
                self._state = None


FeatureT = TypeVar("FeatureT")


def state_of(app: Litestar, state_type: type[FeatureT]) -> FeatureT:
    """The running state of the feature whose state is a ``state_type`` (for raw ASGI code)."""
    plugin = _plugin_keeping(app, state_type)
    if plugin is None:
        raise LookupError(f"no feature of this app keeps a {state_type.__name__}")
    state = plugin.state
    if not isinstance(state, state_type):  # only a plugin whose start returned another type
        raise TypeError(f"{type(plugin).__name__} holds a {type(state).__name__}")
    return state


def _plugin_keeping(app: Litestar, state_type: type[Any]) -> FeaturePlugin[Any] | None:
    plugin_class = FeaturePlugin._by_state_type.get(state_type)
    if plugin_class is None:
        return None
    try:
        return app.plugins.get(plugin_class)
    except KeyError:  # not that class itself: perhaps a subclass of it
        return next((p for p in app.plugins.init if isinstance(p, plugin_class)), None)


def services_of(app: Litestar) -> Services:
    """The shared resources the core lifespan built for ``app``."""
    services: Services = app.state.services
    return services
