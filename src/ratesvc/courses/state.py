"""What the courses feature keeps while the app runs; its handlers get it as ``courses_state``.

Here and not in ``plugin.py``: the routes import this type, and the plugin
imports the routes.
"""

from __future__ import annotations

from dataclasses import dataclass

from ratesvc.courses.broadcast import Broadcaster
from ratesvc.courses.convert import Conversions
from ratesvc.courses.history_read import HistoryReader
from ratesvc.courses.local import LocalAnswers
from ratesvc.courses.query import CoursesQueries
from ratesvc.courses.rates import Pricing
from ratesvc.courses.redis_sink import RedisCoursesSink
from ratesvc.courses.sources import Sources
from ratesvc.lease import Lease


@dataclass(frozen=True)
class CoursesState:
    """What the handlers and metrics need of this feature."""

    sources: Sources
    pricing: Pricing
    partial: str
    lease: Lease
    sink: RedisCoursesSink
    broadcaster: Broadcaster
    queries: CoursesQueries
    answers: LocalAnswers
    """This process's answers to /v1/courses queries (from quotes at most 50 ms old)."""
    conversions: Conversions
    history: HistoryReader
    """Reads ``/v1/courses/history`` from the Redis chunk cache and PostgreSQL."""
