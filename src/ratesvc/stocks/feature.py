"""The stocks feature: its routes and what it starts."""

from __future__ import annotations

from litestar.handlers import HTTPRouteHandler

from ratesvc.features import Feature
from ratesvc.log import get_logger
from ratesvc.pipelined import PipelinedRedis
from ratesvc.services import Services
from ratesvc.stocks.budget import UpstreamBudget
from ratesvc.stocks.cache import BarStore
from ratesvc.stocks.coalesce import ChunkLocks, NamedLocks
from ratesvc.stocks.docstore import DocStore
from ratesvc.stocks.gateway import Gateway
from ratesvc.stocks.gateway_routes import GATEWAY_KEY, gateway_routes
from ratesvc.stocks.hot import HotPages
from ratesvc.stocks.metrics import StocksStats
from ratesvc.stocks.recent import RecentSeries
from ratesvc.stocks.refresher import Refresher
from ratesvc.stocks.routes import EXTRAS_KEY, HOT_KEY, aggregates_route
from ratesvc.stocks.service import StockBars
from ratesvc.stocks.sessions import Sessions
from ratesvc.stocks.upstream import PolygonClient

log = get_logger("stocks")

REFRESHER_TASK = "stocks_refresher"
READER_KEY = "stocks_reader"
SIMULATOR_KEY = "simulated"
"""Key sent to the built-in simulator when none is configured (it accepts any)."""


async def start(services: Services) -> None:
    settings = services.settings
    api_key = settings.polygon_api_key or (SIMULATOR_KEY if settings.simulate else "")
    if not api_key:
        log.warning("polygon_api_key_missing", setting="RATESVC_POLYGON_API_KEY")
    stats = StocksStats()
    client = PolygonClient(
        services.http,
        base_url=settings.polygon_url,
        api_key=api_key,
        timeout_s=settings.polygon_timeout_s,
        stats=stats,
    )
    budget = UpstreamBudget(
        services.redis,
        calls=settings.polygon_calls_per_minute,
        window_s=settings.polygon_budget_window_s,
    )
    reader = None
    if settings.redis_url is not None and PipelinedRedis.supports(settings.redis_url):
        reader = services.extras[READER_KEY] = PipelinedRedis(settings.redis_url)
    store = BarStore(
        services.redis,
        open_ttl_s=settings.stocks_open_ttl_s,
        settle_s=settings.stocks_settle_s,
        adjusted_max_age_s=settings.polygon_adjusted_max_age_s,
        reader=reader,
    )
    # A lock outlives the worst fetch: waiting for budget, then a few slow pages.
    lock_ttl_s = settings.stocks_budget_wait_s + 3 * settings.polygon_timeout_s + 5
    recent = RecentSeries(services.redis, keep_s=settings.stocks_refresh_recent_s)
    bars = StockBars(
        store=store,
        locks=ChunkLocks(services.redis, ttl_s=lock_ttl_s),
        client=client,
        budget=budget,
        stats=stats,
        budget_wait_s=settings.stocks_budget_wait_s,
        recent=recent,
    )
    services.extras[EXTRAS_KEY] = bars
    services.extras[HOT_KEY] = HotPages(store)
    docs = DocStore(services.redis, reader=reader)
    services.extras[GATEWAY_KEY] = Gateway(
        redis=services.redis,
        docs=docs,
        locks=NamedLocks(services.redis, ttl_s=lock_ttl_s),
        client=client,
        bars=bars,
        sessions=Sessions(docs, settle_s=settings.stocks_settle_s),
        stats=stats,
    )
    services.metric_sources.append(stats.collect)
    refresher = Refresher(
        bars=bars,
        store=store,
        recent=recent,
        budget=budget,
        stats=stats,
        interval_s=settings.stocks_refresh_interval_s,
    )
    services.extras[REFRESHER_TASK] = refresher
    services.supervisor.start(REFRESHER_TASK, refresher.run)


async def stop(services: Services) -> None:
    reader: PipelinedRedis | None = services.extras.get(READER_KEY)
    if reader is not None:
        await reader.aclose()


def routes(*, raw: bool = True) -> list[HTTPRouteHandler]:
    """The feature's routes; ``raw=False`` leaves out the raw ASGI layers (for the test that
    compares both forms of each route)."""
    return [aggregates_route(raw=raw), *gateway_routes(raw=raw)]


FEATURE = Feature(name="stocks", routes=routes(), start=start, stop=stop)
