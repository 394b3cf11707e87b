"""The app the stocks benchmark serves: ratesvc with only the stocks feature.

Run by ``bench/stocks_workload.py`` in its own process, as uvicorn runs
ratesvc in production, so that the benchmark's client does not share a CPU
or an event loop with the server it measures.
"""

from __future__ import annotations

from litestar import Litestar

from ratesvc.app import create_app
from ratesvc.config import load_settings
from ratesvc.log import configure_logging
from ratesvc.stocks.plugin import StocksPlugin


def create() -> Litestar:
    settings = load_settings(env_file=None)
    configure_logging(settings.log_level, settings.secrets)
    return create_app(settings, plugins=[StocksPlugin()])
