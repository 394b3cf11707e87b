"""The events feature as a plugin: its routes, its state and what it starts."""

from __future__ import annotations

from collections.abc import Sequence

from litestar.types import ControllerRouterHandler

from ratesvc.events import store
from ratesvc.events.appender import StreamAppender
from ratesvc.events.counters import Counters
from ratesvc.events.drainer import EventDrainer, consumer_name, ensure_group
from ratesvc.events.monitor import BacklogMonitor, EventsCollector
from ratesvc.events.routes import routes
from ratesvc.events.state import EventsState
from ratesvc.log import get_logger
from ratesvc.plugin import FeaturePlugin
from ratesvc.services import Services

log = get_logger("events")

DRAINER_TASK = "events-drainer"
MONITOR_TASK = "events-monitor"
COUNTS_TASK = "events-counts"


class EventsPlugin(FeaturePlugin[EventsState]):
    name = "events"
    state_type = EventsState

    def route_handlers(self) -> Sequence[ControllerRouterHandler]:
        return routes(raw=self.raw)

    async def start(self, services: Services) -> EventsState:
        settings = services.settings
        await ensure_group(services.redis)
        counters = Counters(services.redis)
        # Redis may have lost the counters (restart without persistence, failover);
        # PostgreSQL has the truth, and raising to it is harmless when nothing was lost.
        # COUNTS_TASK does the same whenever Redis loses them while the service runs.
        totals = await store.all_totals(services.db)
        await counters.rebuild(totals)
        appender = StreamAppender(services.redis, settings.events_stream_max)
        drainer = EventDrainer(
            services.redis,
            services.db,
            consumer=consumer_name(),
            batch_max=settings.events_batch_max,
            claim_idle_s=settings.events_claim_idle_s,
        )
        monitor = BacklogMonitor(
            services.redis,
            appender,
            stream_max=settings.events_stream_max,
            lag_warn_s=settings.events_lag_warn_s,
        )
        await monitor.sample()
        services.metric_sources.append(EventsCollector(appender, drainer, monitor))
        services.readiness_checks["events_backlog"] = monitor.healthy
        services.supervisor.start(DRAINER_TASK, drainer.run)
        services.supervisor.start(MONITOR_TASK, monitor.run)
        services.supervisor.start(COUNTS_TASK, lambda: counters.keep_complete(services.db))
        log.info("events_started", consumer=drainer.consumer, event_types=len(totals))
        return EventsState(appender, counters, drainer, monitor, services.db)
