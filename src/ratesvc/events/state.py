"""What the events feature keeps while the app runs (``services.extras["events"]``)."""

from __future__ import annotations

from dataclasses import dataclass

from ratesvc.events.appender import StreamAppender
from ratesvc.events.counters import Counters
from ratesvc.events.drainer import EventDrainer
from ratesvc.events.monitor import BacklogMonitor


@dataclass(frozen=True)
class EventsState:
    appender: StreamAppender
    counters: Counters
    drainer: EventDrainer
    monitor: BacklogMonitor
