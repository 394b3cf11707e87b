"""What the events feature keeps while the app runs; its handlers get it as ``events_state``."""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg

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
    db: asyncpg.Pool
    """Where the true totals are when Redis lost the counters."""
