"""Command line: ``ratesvc serve | simulate | migrate | purge``."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.util
import os
import signal
import sys
from collections.abc import Sequence
from contextlib import ExitStack
from types import FrameType
from typing import Any

from ratesvc.config import Settings, SettingsError, load_settings
from ratesvc.log import configure_logging, get_logger
from ratesvc.redact import redact_url

log = get_logger("cli")

DESCRIPTION = (
    "ratesvc: crypto rates, cached stock bars and event counts. Commands: "
    "serve (the HTTP service), simulate (the upstream simulators), "
    "migrate (database migrations), purge (forget a ticker's cached bars)."
)
"""What ``ratesvc --help`` says; plain text, unlike the module docstring."""

SIMULATORS_MISSING = (
    "ratesvc: the upstream simulators are not installed; from the ratesvc repository, "
    "`pip install ./packages/ratesvc-sim` (`make install` does)"
)


def _require_simulators() -> None:
    """Exit 2 with one line saying how to install them, when ``ratesvc_sim`` is missing.

    The simulators are a package of their own, so the service's wheel and image
    carry them only when asked for.
    """
    if importlib.util.find_spec("ratesvc_sim") is None:
        print(SIMULATORS_MISSING, file=sys.stderr)
        raise SystemExit(2)


def _settings_or_exit(overrides: dict[str, str]) -> Settings:
    for key, value in overrides.items():
        os.environ[key] = value
    try:
        return load_settings()
    except SettingsError as exc:
        print(f"ratesvc: {exc}", file=sys.stderr)
        raise SystemExit(2) from None


def _start(overrides: dict[str, str] | None = None) -> Settings:
    """What every command does first: its settings (or exit 2 naming the bad one), logging."""
    settings = _settings_or_exit(overrides or {})
    configure_logging(settings.log_level, settings.secrets)
    return settings


def _overrides(args: argparse.Namespace) -> dict[str, str]:
    chosen = {
        "RATESVC_HOST": getattr(args, "host", None),
        "RATESVC_PORT": getattr(args, "port", None),
        "RATESVC_WORKERS": getattr(args, "workers", None),
    }
    return {k: str(v) for k, v in chosen.items() if v is not None}


def serve(args: argparse.Namespace) -> int:
    import uvicorn  # noqa: PLC0415 - keep `ratesvc --help` fast

    from ratesvc.embedded import (  # noqa: PLC0415
        EmbeddedPostgres,
        EmbeddedRedis,
        embedded_redis_dir,
    )

    settings = _start(_overrides(args))
    with ExitStack() as stack:
        # Child processes and workers read their settings from the environment,
        # so whatever serve starts for them is announced there.
        if settings.simulate:
            _require_simulators()
            from ratesvc_sim.process import SimulatorProcess  # noqa: PLC0415

            simulators = stack.enter_context(SimulatorProcess(settings.data_path / "simulate"))
            os.environ.update(simulators.environment())
        if settings.redis_url is None:
            redis = EmbeddedRedis(embedded_redis_dir(settings.data_path)).start()
            stack.callback(redis.stop)
            os.environ["RATESVC_REDIS_URL"] = redis.url
        if settings.database_url is None:
            postgres = EmbeddedPostgres(settings.data_path / "postgres").start()
            stack.callback(postgres.stop)
            os.environ["RATESVC_DATABASE_URL"] = postgres.url
        settings = _settings_or_exit({})
        if settings.workers > 1:
            from ratesvc.api.exposition import metrics_dir, reset_metrics_dir  # noqa: PLC0415

            reset_metrics_dir(metrics_dir(settings.data_path))
        log.info("serving", host=settings.host, port=settings.port, workers=settings.workers)
        _install_stop_handlers()
        with contextlib.suppress(_StopRequestedError):
            _run_uvicorn(uvicorn, settings)
    return 0


class _StopRequestedError(Exception):
    """SIGTERM/SIGINT after uvicorn's graceful shutdown: unwind so the embedded servers stop."""


def _raise_stop(_signum: int, _frame: FrameType | None) -> None:
    raise _StopRequestedError


def _install_stop_handlers() -> None:
    # uvicorn restores the previous handlers after its graceful shutdown and then
    # re-raises the signal it caught; with the default handlers that would kill
    # the process before the embedded Redis and PostgreSQL were stopped.
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, _raise_stop)


def _run_uvicorn(uvicorn: Any, settings: Settings) -> None:
    uvicorn.run(
        "ratesvc.app:create_app_from_env",
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=settings.workers,
        loop="uvloop",
        http="ratesvc.header_timeout:HeaderTimeoutProtocol",  # httptools + header deadline
        log_config=None,
        access_log=settings.access_log,
        server_header=False,
        # uvicorn would otherwise believe X-Forwarded-For from loopback peers,
        # letting a local client choose its own rate-limit identity.
        proxy_headers=settings.trust_proxy,
        timeout_graceful_shutdown=int(settings.shutdown_grace_s),
    )


def simulate(args: argparse.Namespace) -> int:
    _require_simulators()
    from ratesvc_sim.server import run_simulators  # noqa: PLC0415

    _start()  # settings are checked and logging set up as for the service
    asyncio.run(run_simulators(args.host, args.port, ready_file=args.ready_file, seed=args.seed))
    return 0


def migrate(_args: argparse.Namespace) -> int:
    import asyncpg  # noqa: PLC0415

    from ratesvc.migrate import apply_migrations  # noqa: PLC0415

    settings = _start()
    if settings.database_url is None:
        print("ratesvc: RATESVC_DATABASE_URL must be set for migrate", file=sys.stderr)
        return 2

    async def run() -> list[int]:
        conn = await asyncpg.connect(settings.database_url)
        try:
            return await apply_migrations(conn)
        finally:
            await conn.close()

    applied = asyncio.run(run())
    print(f"applied {len(applied)} migration(s): {applied}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ratesvc", description=DESCRIPTION)
    commands = parser.add_subparsers(dest="command", required=True)

    serve_cmd = commands.add_parser("serve", help="run the HTTP service (embedded stores if unset)")
    serve_cmd.add_argument("--host", help="bind address (RATESVC_HOST)")
    serve_cmd.add_argument("--port", type=int, help="TCP port (RATESVC_PORT)")
    serve_cmd.add_argument("--workers", type=int, help="worker processes (RATESVC_WORKERS)")
    serve_cmd.set_defaults(run=serve)

    sim_cmd = commands.add_parser("simulate", help="run the Binance/CoinGecko/Polygon simulators")
    sim_cmd.add_argument("--host", default="127.0.0.1")
    sim_cmd.add_argument("--port", type=int, default=8100, help="first port; 0 picks free ports")
    sim_cmd.add_argument("--seed", type=int, default=1, help="seed of the price random walk")
    sim_cmd.add_argument("--ready-file", help="write the simulators' URLs here as JSON when up")
    sim_cmd.set_defaults(run=simulate)

    migrate_cmd = commands.add_parser("migrate", help="apply database migrations and exit")
    migrate_cmd.set_defaults(run=migrate)

    purge_cmd = commands.add_parser("purge", help="forget a ticker's cached stock bars")
    purge_cmd.add_argument("ticker", help="as Polygon spells it, e.g. AAPL or X:BTCUSD")
    purge_cmd.add_argument(
        "--adjusted-only", action="store_true", help="keep unadjusted bars (after a split)"
    )
    purge_cmd.set_defaults(run=purge)
    return parser


def purge(args: argparse.Namespace) -> int:
    from redis.asyncio import Redis  # noqa: PLC0415
    from redis.exceptions import ConnectionError as RedisConnectionError  # noqa: PLC0415

    from ratesvc.stocks.purge import purge_ticker  # noqa: PLC0415

    settings = _start()
    redis_url = _service_redis_url(settings)
    if redis_url is None:
        print(
            f"ratesvc: no running ratesvc with an embedded Redis under {settings.data_path} "
            "(RATESVC_DATA_DIR); start it, or set RATESVC_REDIS_URL to the service's Redis",
            file=sys.stderr,
        )
        return 2

    async def run() -> int:
        redis = Redis.from_url(redis_url)
        try:
            return await purge_ticker(redis, args.ticker, adjusted_only=args.adjusted_only)
        finally:
            await redis.aclose()

    try:
        deleted = asyncio.run(run())
    except RedisConnectionError as exc:
        print(
            f"ratesvc: no answer from the service's Redis at {redact_url(redis_url)}: "
            f"is ratesvc running? ({exc})",
            file=sys.stderr,
        )
        return 1
    print(f"purged {deleted} cached series of {args.ticker}")
    return 0


def _service_redis_url(settings: Settings) -> str | None:
    """RATESVC_REDIS_URL, or the embedded Redis that a running ``ratesvc serve`` announced."""
    from ratesvc.embedded import embedded_redis_dir, running_redis_url  # noqa: PLC0415

    if settings.redis_url is not None:
        return settings.redis_url
    return running_redis_url(embedded_redis_dir(settings.data_path))


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    result: int = args.run(args)
    return result
