"""The stocks feature as a plugin: its routes, its state and what it starts."""

from __future__ import annotations

from litestar.handlers import HTTPRouteHandler

from ratesvc.log import get_logger
from ratesvc.pipelined import PipelinedRedis
from ratesvc.plugin import FeaturePlugin
from ratesvc.services import Services
from ratesvc.stocks.budget import UpstreamBudget
from ratesvc.stocks.cache import BarStore
from ratesvc.stocks.coalesce import ChunkLocks, NamedLocks
from ratesvc.stocks.docstore import DocStore
from ratesvc.stocks.gateway import Gateway
from ratesvc.stocks.gateway_routes import gateway_routes
from ratesvc.stocks.hot import HotPages
from ratesvc.stocks.metrics import StocksStats
from ratesvc.stocks.recent import RecentSeries
from ratesvc.stocks.refresher import Refresher
from ratesvc.stocks.routes import aggregates_route
from ratesvc.stocks.service import StockBars
from ratesvc.stocks.sessions import Sessions
from ratesvc.stocks.state import StocksState
from ratesvc.stocks.upstream import PolygonClient

log = get_logger("stocks")

REFRESHER_TASK = "stocks_refresher"
SIMULATOR_KEY = "simulated"
"""Key sent to the built-in simulator when none is configured (it accepts any)."""


class StocksPlugin(FeaturePlugin[StocksState]):
    name = "stocks"
    state_type = StocksState

    def route_handlers(self) -> list[HTTPRouteHandler]:
        return [aggregates_route(raw=self.raw), *gateway_routes(raw=self.raw)]

    async def start(self, services: Services) -> StocksState:
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
            reader = PipelinedRedis(settings.redis_url)
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
        docs = DocStore(services.redis, reader=reader)
        gateway = Gateway(
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
        services.supervisor.start(REFRESHER_TASK, refresher.run)
        hot = HotPages(store, max_bytes=settings.stocks_kept_answers_mb * 2**20)
        services.metric_sources.append(hot.collect)
        return StocksState(bars, hot, gateway, refresher, reader)

    async def stop(self, services: Services, state: StocksState) -> None:
        if state.reader is not None:
            await state.reader.aclose()
