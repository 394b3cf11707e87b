"""The courses feature as a plugin: sinks, warm start, the exchange connections under a lease, routes.

``CoursesPlugin(sources)`` runs it for a registry of sources (``sources.py``);
by default the one ratesvc ships, Binance then CoinGecko.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

from litestar.types import ControllerRouterHandler
from prometheus_client.core import GaugeMetricFamily

from ratesvc.api.metrics import counter_families
from ratesvc.courses import directions, keys
from ratesvc.courses.api import routes
from ratesvc.courses.bars import MinuteBars
from ratesvc.courses.binance import BINANCE
from ratesvc.courses.broadcast import Broadcaster
from ratesvc.courses.coingecko import COINGECKO
from ratesvc.courses.convert import Conversions, ConvertQueries
from ratesvc.courses.directions import BY_NAME, DIRECTIONS, QUOTES
from ratesvc.courses.history import ROUTES as HISTORY_ROUTES
from ratesvc.courses.history_read import HistoryReader
from ratesvc.courses.local import LocalAnswers
from ratesvc.courses.postgres_sink import PostgresQuoteSink, prune_history
from ratesvc.courses.query import CoursesQueries
from ratesvc.courses.quotes_hash import load_quotes
from ratesvc.courses.rates import Pricing
from ratesvc.courses.redis_sink import RedisCoursesSink
from ratesvc.courses.sources import Source, Sources
from ratesvc.courses.state import CoursesState
from ratesvc.courses.warm_start import warm_start
from ratesvc.lease import Lease
from ratesvc.log import get_logger
from ratesvc.plugin import FeaturePlugin
from ratesvc.services import Services

log = get_logger("courses")

PRUNE_EVERY_S = 3600.0
DEFAULT_SOURCES: tuple[Source, ...] = (BINANCE, COINGECKO)
"""In failover order: Binance's stream is fresher; CoinGecko covers its gaps (and its RUB legs)."""


async def _run_exchanges(
    services: Services, sources: Sources, sink: RedisCoursesSink, bars: MinuteBars
) -> None:
    """The work of the lease holder: every source (the drainer renders when they are quiet)."""
    await sink.prime(services.db)
    try:
        bars.prime(sink.quotes)  # the legs of cross rates, as the last lease holder left them
        async with asyncio.TaskGroup() as group:
            for source in sources:
                group.create_task(
                    source.run(services.settings, services.http, services.queue.offer)
                )
    finally:
        sink.stand_down()


async def _prune(services: Services) -> None:
    while True:
        deleted = await prune_history(services.db, services.settings.history_days)
        if deleted:
            log.info("history_pruned", rows=deleted)
        await asyncio.sleep(PRUNE_EVERY_S)


def _metrics(state: CoursesState) -> Iterator[Any]:
    held = GaugeMetricFamily(
        "ratesvc_exchange_lease_held", "1 when this replica runs the exchange connections"
    )
    held.add_metric([], 1 if state.lease.held else 0)
    yield held
    age = GaugeMetricFamily(
        "ratesvc_quote_age_seconds",
        "Age of the latest quote per market (lease holder only)",
        labels=["source", "market"],
    )
    now = datetime.now(UTC)
    for quote in state.sink.quotes.values():
        age.add_metric([quote.source, quote.market], (now - quote.observed_at).total_seconds())
    yield age
    cached = GaugeMetricFamily(
        "ratesvc_courses_answers_cached", "Rendered /v1/courses answers held (bounded)"
    )
    cached.add_metric([], state.answers.cached)
    yield cached
    yield from counter_families(
        "ratesvc_courses",
        [("renders", "/v1/courses answers rendered from the local quotes", state.answers.renders)],
    )
    clients = GaugeMetricFamily("ratesvc_stream_clients", "Open /v1/courses/stream connections")
    clients.add_metric([], state.broadcaster.clients)
    yield clients


def _history_metrics(history: PostgresQuoteSink) -> Iterator[Any]:
    pending = GaugeMetricFamily(
        "ratesvc_history_pending", "Quote history rows waiting for PostgreSQL (it is down)"
    )
    pending.add_metric([], history.pending)
    yield pending
    yield from counter_families(
        "ratesvc_history",
        [
            (
                "dropped",
                "Quote history rows dropped because PostgreSQL was down past the buffer",
                history.dropped,
            ),
            ("write_failures", "Failed attempts to write quote history", history.failures),
        ],
    )


async def _start(sources: Sources, services: Services) -> CoursesState:
    settings = services.settings
    # First: everything below (queries, answers, conversions, bars) asks the table.
    directions.configure(settings.extra_assets_parsed)
    pricing = Pricing(sources, sources.freshness(settings))
    sink = RedisCoursesSink(services.redis, pricing, settings.partial_courses)
    bars = MinuteBars(pricing)
    history = PostgresQuoteSink(
        services.db, buffer_max=settings.history_buffer_max, bars=bars, redis=services.redis
    )
    services.sinks.extend([sink, history])
    services.readiness_checks["quote_history"] = history.healthy
    loaded = await warm_start(services.redis, services.db)
    log.info("warm_start", quotes_loaded=loaded, directions=len(DIRECTIONS))
    # Cross rates need legs that move rarely (CoinGecko, every 30 s): know them from the start.
    bars.prime(await load_quotes(services.redis))
    queries = CoursesQueries(DIRECTIONS, sources.names)
    answers = LocalAnswers(services.redis, BY_NAME, pricing, settings.partial_courses)
    state = CoursesState(
        sources=sources,
        pricing=pricing,
        partial=settings.partial_courses,
        lease=Lease(services.redis, keys.LEASE, settings.lease_ttl_s),
        sink=sink,
        broadcaster=Broadcaster(services.redis),
        queries=queries,
        answers=answers,
        conversions=Conversions(answers, queries, ConvertQueries(DIRECTIONS, QUOTES)),
        history=HistoryReader(
            services.redis, services.db, retention_s=settings.history_days * 86400
        ),
    )
    services.leases["exchanges"] = state.lease
    services.metric_sources.append(lambda: _metrics(state))
    services.metric_sources.append(lambda: _history_metrics(history))
    services.supervisor.start(
        "exchanges",
        lambda: state.lease.run_while_held(lambda: _run_exchanges(services, sources, sink, bars)),
    )
    services.supervisor.start("courses_stream", state.broadcaster.run)
    services.supervisor.start("history_pruner", lambda: _prune(services))
    return state


class CoursesPlugin(FeaturePlugin[CoursesState]):
    """Crypto rates: ``/v1/courses``, ``/v1/convert``, the stream and the history."""

    name = "courses"
    state_type = CoursesState

    def __init__(self, sources: Iterable[Source] = DEFAULT_SOURCES, *, raw: bool = True) -> None:
        """``sources`` in failover order; ``raw`` as in ``FeaturePlugin``."""
        super().__init__(raw=raw)
        self.sources = Sources(sources)

    def route_handlers(self) -> Sequence[ControllerRouterHandler]:
        return [*routes(self.sources.names, raw=self.raw), *HISTORY_ROUTES]

    async def start(self, services: Services) -> CoursesState:
        return await _start(self.sources, services)
