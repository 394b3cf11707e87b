"""What the stocks feature keeps while the app runs; its handlers get it as ``stocks_state``."""

from __future__ import annotations

from dataclasses import dataclass

from ratesvc.pipelined import PipelinedRedis
from ratesvc.stocks.gateway import Gateway
from ratesvc.stocks.hot import HotPages
from ratesvc.stocks.refresher import Refresher
from ratesvc.stocks.service import StockBars


@dataclass(frozen=True)
class StocksState:
    bars: StockBars
    """Aggregates from the range-aware cache."""
    hot: HotPages
    """Aggregates answers this process served lately."""
    gateway: Gateway
    """The other Polygon endpoints, as cached documents."""
    refresher: Refresher
    reader: PipelinedRedis | None
    """The pipelined connection cache hits are read through (closed at stop), if any."""
