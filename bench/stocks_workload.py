"""Replay a fixed charting workload against ratesvc and the Polygon simulator.

Users open stock charts (minute, 5-minute, hour and day bars) on a handful of
tickers around the same recent weeks, then scroll back and forth, zoom in and
out and reload, as a charting frontend does.  Every view asks for one
``/v1/stocks/aggs/...`` URL.  The script prints how many calls reached the
upstream, how many distinct URLs were asked for (what a URL-keyed cache such
as nginx ``proxy_cache`` would have had to fetch, each once), their ratio,
the cache hit rate and the latency of hits, measured by the client.

Requests go over one keep-alive HTTP/1.1 connection spoken directly on an
asyncio stream, as wrk or ab would, so the figures are the service's and not
a Python HTTP client's (httpx adds 1-2 ms per call for these body sizes).

Targets: upstream calls at most a quarter of the distinct URLs; a hit under
5 ms at p99.  Everything it needs is started here, each on a free port:
embedded Redis and PostgreSQL, the simulator (in this process, to count its
calls) and ratesvc under uvicorn with uvloop and httptools in a child process
(``bench/stocks_app.py``), as in production.

    .venv/bin/python bench/stocks_workload.py [--quick] [--sessions N] [--seed N] [--strict]

Exits 1 on an unexpected answer, and with ``--strict`` also when a target is
missed (latency on a shared 2-core machine is noisy; smoke runs should not
fail on it).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import random
import re
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import httpx
import uvicorn
from litestar import Litestar

from ratesvc.embedded import EmbeddedPostgres, EmbeddedRedis, free_port
from ratesvc.log import configure_logging
from ratesvc.simulate.polygon import PolygonSimulator

BENCH_DIR = Path(__file__).resolve().parent
RESULTS_COUNT = re.compile(rb'"resultsCount":(\d+)')
"""Read from the head of each answer; decoding whole bodies would slow the client."""

ANCHOR = date(2024, 6, 28)
"""The "today" of the replay: a Friday whose sessions are long closed."""
TICKERS = {"AAPL": 5, "NVDA": 4, "TSLA": 3, "MSFT": 2, "AMZN": 2, "SPY": 1}
"""Tickers and how popular they are."""


@dataclass(frozen=True)
class Chart:
    multiplier: int
    timespan: str
    presets: tuple[int, ...]
    """Window lengths (calendar days) the frontend's range buttons offer."""
    widest: int
    """Zooming out stops here (calendar days): a frontend moves to coarser bars instead."""


CHARTS = (
    Chart(1, "minute", (1, 3, 5), widest=10),
    Chart(5, "minute", (5, 10, 30), widest=60),
    Chart(1, "hour", (30, 60, 90), widest=365),
    Chart(1, "day", (180, 365, 1825), widest=3650),
)


@dataclass(frozen=True)
class View:
    ticker: str
    chart: Chart
    first: date
    last: date

    def url(self) -> str:
        return (
            f"/v1/stocks/aggs/{self.ticker}/range/{self.chart.multiplier}/"
            f"{self.chart.timespan}/{self.first.isoformat()}/{self.last.isoformat()}?limit=50000"
        )


def session(rng: random.Random, actions: int) -> list[View]:
    """One user's views: open a chart at a preset, then scroll, zoom and reload."""
    ticker = rng.choices(list(TICKERS), weights=list(TICKERS.values()))[0]
    chart = rng.choice(CHARTS)
    length = rng.choice(chart.presets)
    last = ANCHOR - timedelta(days=rng.choice((0, 0, 0, 1, 7)))
    views = [View(ticker, chart, last - timedelta(days=length - 1), last)]
    for _ in range(actions - 1):
        view = views[-1]
        span = (view.last - view.first).days + 1
        action = rng.choices(
            ("back", "forward", "zoom_in", "zoom_out", "reload", "preset"),
            weights=(4, 2, 2, 2, 2, 1),
        )[0]
        first, last = view.first, view.last
        if action == "back":
            shift = max(1, span // 2)
            first, last = first - timedelta(days=shift), last - timedelta(days=shift)
        elif action == "forward" and last < ANCHOR:
            shift = min(max(1, span // 2), (ANCHOR - last).days)
            first, last = first + timedelta(days=shift), last + timedelta(days=shift)
        elif action == "zoom_in" and span > 1:
            first = last - timedelta(days=span // 2 - 1)
        elif action == "zoom_out":
            first = last - timedelta(days=min(span * 2, chart.widest) - 1)
        elif action == "preset":
            last = ANCHOR
            first = last - timedelta(days=rng.choice(chart.presets) - 1)
        views.append(View(ticker, chart, first, last))
    return views


def workload(sessions: int, actions: int, seed: int) -> list[View]:
    """Sessions interleaved action by action, as concurrent users' requests arrive."""
    rng = random.Random(seed)
    plans = [session(rng, actions) for _ in range(sessions)]
    replay: list[View] = []
    for step in range(actions):
        replay.extend(plan[step] for plan in plans if step < len(plan))
    return replay


@asynccontextmanager
async def serve(app: Litestar) -> AsyncIterator[str]:
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_config=None, lifespan="on")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            await task
            raise RuntimeError("server did not start")
        await asyncio.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}"
    finally:
        server.should_exit = True
        await task


def percentile(values: list[float], q: float) -> float:
    if len(values) < 2:
        return values[0] if values else float("nan")
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]


class RawHttp:
    """A minimal HTTP/1.1 keep-alive client: GET, and read a Content-Length body."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def connect(cls, base: str) -> RawHttp:
        host, port = base.removeprefix("http://").split(":")
        reader, writer = await asyncio.open_connection(host, int(port), limit=2**22)
        return cls(reader, writer)

    async def get(self, path: str) -> tuple[int, dict[str, str], bytes]:
        self.writer.write(f"GET {path} HTTP/1.1\r\nHost: ratesvc\r\n\r\n".encode())
        head = (await self.reader.readuntil(b"\r\n\r\n")).decode("latin-1")
        status_line, *lines = head.rstrip().split("\r\n")
        headers = {}
        for line in lines:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        body = await self.reader.readexactly(int(headers.get("content-length", "0")))
        return int(status_line.split()[1]), headers, body

    async def close(self) -> None:
        self.writer.close()
        await self.writer.wait_closed()


@asynccontextmanager
async def ratesvc_process(environment: dict[str, str]) -> AsyncIterator[str]:
    """ratesvc (stocks only) under uvicorn in a child process; yields its base URL."""
    port = free_port()
    command = [
        sys.executable, "-m", "uvicorn", "stocks_app:create", "--factory",
        "--app-dir", str(BENCH_DIR), "--host", "127.0.0.1", "--port", str(port),
        "--loop", "uvloop", "--http", "httptools", "--no-access-log", "--log-level", "warning",
    ]  # fmt: skip
    process = await asyncio.create_subprocess_exec(*command, env={**os.environ, **environment})
    base = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(base_url=base) as probe:
            deadline = time.monotonic() + 60
            while True:
                if process.returncode is not None:
                    raise RuntimeError("ratesvc did not start")
                try:
                    if (await probe.get("/v1/health")).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError("ratesvc did not answer within 60 s")
                await asyncio.sleep(0.05)
        yield base
    finally:
        process.terminate()
        await process.wait()


async def replay(views: list[View], work_dir: Path, *, strict: bool = False) -> int:
    redis = EmbeddedRedis(work_dir / "redis", persistent=False).start()
    postgres = EmbeddedPostgres(work_dir / "postgres" / "data").start()
    polygon = PolygonSimulator(seed=1)
    try:
        simulator = Litestar(polygon.routes(), openapi_config=None, logging_config=None)
        async with serve(simulator) as polygon_base:
            environment = {
                "RATESVC_REDIS_URL": redis.url,
                "RATESVC_DATABASE_URL": postgres.url,
                "RATESVC_POLYGON_URL": f"{polygon_base}/polygon",
                "RATESVC_POLYGON_API_KEY": "bench-key",
                # The budget is not what is measured here: calls are counted, not paced.
                "RATESVC_POLYGON_CALLS_PER_MINUTE": "1000000",
                "RATESVC_STOCKS_REFRESH_INTERVAL_S": "3600",
                "RATESVC_RATE_LIMIT": "1000000/second",
                "RATESVC_LOG_LEVEL": "WARNING",
            }
            async with ratesvc_process(environment) as base:
                client = await RawHttp.connect(base)
                try:
                    return await _measure(client, views, polygon, strict=strict)
                finally:
                    await client.close()
    finally:
        postgres.stop()
        redis.stop()


async def _measure(
    client: RawHttp, views: list[View], polygon: PolygonSimulator, *, strict: bool
) -> int:
    statuses: Counter[str] = Counter()
    hit_ms: list[float] = []
    bars = 0
    started = time.perf_counter()
    gc.disable()  # the client's own collections are not the service's latency
    for view in views:
        begin = time.perf_counter()
        status, headers, body = await client.get(view.url())
        elapsed_ms = (time.perf_counter() - begin) * 1000
        if status != 200:
            print(f"unexpected {status} for {view.url()}: {body[:200]!r}")
            return 1
        cache = headers["x-cache"]
        statuses[cache] += 1
        bars += int(RESULTS_COUNT.search(body, 0, 200).group(1))  # type: ignore[union-attr]
        if cache == "HIT":
            hit_ms.append(elapsed_ms)
    wall_s = time.perf_counter() - started
    gc.enable()

    requests = len(views)
    distinct = len({view.url() for view in views})
    calls = polygon.call_count
    ratio = calls / distinct
    print(f"requests replayed:        {requests} ({bars} bars served in {wall_s:.1f} s)")
    print(f"X-Cache:                  {dict(sorted(statuses.items()))}")
    print(f"distinct request URLs:    {distinct}  (a URL-keyed cache fetches each once)")
    print(f"upstream calls:           {calls}")
    print(f"calls / distinct URLs:    {ratio:.3f}  (target <= 0.25)")
    print(f"cache hit rate:           {statuses['HIT'] / requests:.1%}")
    print(
        f"hit latency:              p50 {percentile(hit_ms, 50):.2f} ms, "
        f"p99 {percentile(hit_ms, 99):.2f} ms  (target p99 < 5 ms; {len(hit_ms)} hits)"
    )
    ok = ratio <= 0.25 and percentile(hit_ms, 99) < 5.0
    print("targets met" if ok else "TARGETS MISSED")
    return 0 if ok or not strict else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a small replay for CI smoke runs")
    parser.add_argument("--sessions", type=int, help="user sessions (default 80, quick 20)")
    parser.add_argument("--actions", type=int, help="views per session (default 12, quick 8)")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument(
        "--strict", action="store_true", help="exit 1 when a target is missed, not only on errors"
    )
    args = parser.parse_args()
    sessions = args.sessions or (20 if args.quick else 80)
    actions = args.actions or (8 if args.quick else 12)
    configure_logging("WARNING")
    views = workload(sessions, actions, args.seed)
    print(f"workload: {sessions} sessions x {actions} views, seed {args.seed}")
    with tempfile.TemporaryDirectory(prefix="ratesvc-bench-") as tmp:
        return asyncio.run(replay(views, Path(tmp), strict=args.strict))


if __name__ == "__main__":
    raise SystemExit(main())
