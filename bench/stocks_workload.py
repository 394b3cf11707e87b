"""Replay a fixed frontend workload against ratesvc and the Polygon simulator.

Each user session is what a charting frontend pointed at ratesvc asks for:
a watchlist page (the previous close of 20 tickers, the details of the
ticker picked, the market status), then stock charts (minute, 5-minute,
hour and day bars) on that ticker around the same recent weeks, scrolled
back and forth, zoomed and reloaded, then a "top movers" page (the grouped
daily bars of the last session, or of the one before).  ``--charts-only``
replays the charts alone, as the earlier version of this benchmark did.

The script prints, per endpoint and in all, how many calls reached the
upstream, how many distinct URLs were asked for (what a URL-keyed cache such
as nginx ``proxy_cache`` would have had to fetch, each once) and their ratio;
how many answers differ from the simulator's own (wrong answers: every
distinct gateway URL and a sample of the chart URLs are checked); the hit
latency of the replay (one connection) and of cache hits on every endpoint
with 8 connections while ratesvc has one core to itself, and the CPU the
server spent per request of that phase (the steadier figure on a busy
machine: a latency percentile also holds every pause other processes cause).

Requests go over one keep-alive HTTP/1.1 connection spoken directly on an
asyncio stream (on uvloop), as wrk or ab would, so the figures are the
service's and not a Python HTTP client's (httpx adds 1-2 ms per call for
these body sizes).  A latency is taken from the request's write to the last
byte of its answer read, so it holds the client's own turn too.

Targets: upstream calls at most a quarter of the distinct URLs, 0 wrong
answers; a hit under 5 ms at p99 (8 connections, one core).  Everything it needs is started here, each on a free port:
embedded Redis and PostgreSQL, the simulator (in this process, to count its
calls) and ratesvc under uvicorn with uvloop and httptools in a child process
(``bench/stocks_app.py``), as in production.

    .venv/bin/python bench/stocks_workload.py [--quick] [--sessions N] [--seed N] [--strict]
        [--charts-only]

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
from urllib.parse import urlsplit

import httpx
import msgspec
import psutil
import uvicorn
import uvloop
from litestar import Litestar

from ratesvc.embedded import EmbeddedPostgres, EmbeddedRedis, free_port
from ratesvc.log import configure_logging
from ratesvc.stocks.timegrid import eastern_today
from ratesvc_sim.polygon import PolygonSimulator
from ratesvc_sim.polygon_reference import TICKERS as UNIVERSE

BENCH_DIR = Path(__file__).resolve().parent
RESULTS_COUNT = re.compile(rb'"resultsCount":(\d+)')
"""Read from the head of each answer; decoding whole bodies would slow the client."""

ANCHOR = date(2024, 6, 28)
"""The "today" of the replay: a Friday whose sessions are long closed."""
TICKERS = {"AAPL": 5, "NVDA": 4, "TSLA": 3, "MSFT": 2, "AMZN": 2, "SPY": 1}
"""Tickers charted and how popular they are; every watchlist holds them all."""
WATCHLIST = 20
"""Tickers on a watchlist page: the popular ones and others from the simulator's universe."""
HIT_CONNECTIONS = 8
HIT_ROUNDS = 200
"""Requests per connection and endpoint in the hit-latency phase."""
AGGS_CHECKED = 40
"""Distinct chart URLs whose bars are compared with the simulator's (all would take minutes)."""
CORES = sorted(os.sched_getaffinity(0))
SERVER_CORE = CORES[0]
"""ratesvc's core; the client, Redis, PostgreSQL and the simulator get the others."""


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


@dataclass(frozen=True)
class Ask:
    endpoint: str
    url: str


def frontend_session(rng: random.Random, actions: int, previous: list[str]) -> list[Ask]:
    """Watchlist page, then charts of the ticker picked, then the top movers page."""
    favourites = rng.sample(list(TICKERS), k=len(TICKERS))
    others = [t for t in UNIVERSE if t not in favourites]
    watchlist = favourites + rng.sample(others, k=WATCHLIST - len(favourites))
    asks = [Ask("prev", f"/v2/aggs/ticker/{t}/prev") for t in watchlist]
    charts = session(rng, actions)
    picked = charts[0].ticker
    asks += [
        Ask("ticker_details", f"/v3/reference/tickers/{picked}"),
        Ask("market_status", "/v1/marketstatus/now"),
    ]
    asks += [Ask("aggs", view.url()) for view in charts]
    day = rng.choices(previous, weights=(4, 1))[0]
    asks.append(Ask("grouped", f"/v2/aggs/grouped/locale/us/market/stocks/{day}"))
    return asks


def workload(sessions: int, actions: int, seed: int, *, charts_only: bool) -> list[Ask]:
    """Sessions interleaved step by step, as concurrent users' requests arrive."""
    rng = random.Random(seed)
    previous = last_sessions(eastern_today(int(time.time() * 1000)), 2)
    if charts_only:
        plans = [[Ask("aggs", v.url()) for v in session(rng, actions)] for _ in range(sessions)]
    else:
        plans = [frontend_session(rng, actions, previous) for _ in range(sessions)]
    replayed: list[Ask] = []
    for step in range(max(len(plan) for plan in plans)):
        replayed.extend(plan[step] for plan in plans if step < len(plan))
    return replayed


def last_sessions(today: date, count: int) -> list[str]:
    """The ``count`` weekdays before ``today``, latest first (the simulator has no holidays)."""
    days: list[str] = []
    day = today
    while len(days) < count:
        day -= timedelta(days=1)
        if day.weekday() < 5:
            days.append(day.isoformat())
    return days


def endpoint_of(path: str) -> str:
    """Which gateway endpoint an upstream call was for (by Polygon's path)."""
    for marker, name in (
        ("/range/", "aggs"),
        ("/prev", "prev"),
        ("/open-close/", "open_close"),
        ("/grouped/", "grouped"),
        ("/v3/reference/tickers/", "ticker_details"),
        ("/v3/reference/tickers", "tickers"),
        ("/marketstatus/", "market_status"),
    ):
        if marker in path:
            return name
    return "other"


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


def _on_server_core() -> None:
    if len(CORES) > 1:
        os.sched_setaffinity(0, {SERVER_CORE})


@dataclass(frozen=True)
class Running:
    base: str
    """ratesvc's base URL."""
    polygon_url: str
    """The simulator's."""
    pid: int
    """ratesvc's process."""


@asynccontextmanager
async def ratesvc_process(environment: dict[str, str]) -> AsyncIterator[tuple[str, int]]:
    """ratesvc (stocks only) under uvicorn in a child process; yields its base URL and pid."""
    port = free_port()
    command = [
        sys.executable, "-m", "uvicorn", "stocks_app:create", "--factory",
        "--app-dir", str(BENCH_DIR), "--host", "127.0.0.1", "--port", str(port),
        "--loop", "uvloop", "--http", "httptools", "--no-access-log", "--log-level", "warning",
    ]  # fmt: skip
    process = await asyncio.create_subprocess_exec(
        *command, env={**os.environ, **environment}, preexec_fn=_on_server_core
    )
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
        yield base, process.pid
    finally:
        process.terminate()
        await process.wait()


@asynccontextmanager
async def stocks_service(
    work_dir: Path, polygon: PolygonSimulator, settings: dict[str, str]
) -> AsyncIterator[Running]:
    """Embedded Redis and PostgreSQL, ``polygon`` served here, ratesvc in a child process.

    ``settings`` are RATESVC_* overrides.
    """
    redis = EmbeddedRedis(work_dir / "redis", persistent=False).start()
    postgres = EmbeddedPostgres(work_dir / "postgres" / "data").start()
    try:
        simulator = Litestar(polygon.routes(), openapi_config=None, logging_config=None)
        async with serve(simulator) as polygon_base:
            environment = {
                "RATESVC_REDIS_URL": redis.url,
                "RATESVC_DATABASE_URL": postgres.url,
                "RATESVC_POLYGON_URL": f"{polygon_base}/polygon",
                "RATESVC_POLYGON_API_KEY": "bench-key",
                "RATESVC_LOG_LEVEL": "WARNING",
                **settings,
            }
            async with ratesvc_process(environment) as (base, pid):
                yield Running(base, f"{polygon_base}/polygon", pid)
    finally:
        postgres.stop()
        redis.stop()


async def replay(asks: list[Ask], work_dir: Path, *, strict: bool = False) -> int:
    if len(CORES) > 1:
        # Inherited by Redis, PostgreSQL and ratesvc; ratesvc then moves to its own core.
        os.sched_setaffinity(0, set(CORES[1:]))
    polygon = PolygonSimulator(seed=1)
    settings = {
        # The budget is not what is measured here: calls are counted, not paced.
        "RATESVC_POLYGON_CALLS_PER_MINUTE": "1000000",
        "RATESVC_STOCKS_REFRESH_INTERVAL_S": "3600",
        "RATESVC_RATE_LIMIT": "1000000/second",
    }
    async with stocks_service(work_dir, polygon, settings) as running:
        client = await RawHttp.connect(running.base)
        try:
            failed = await _measure(client, asks, polygon, running.polygon_url)
        finally:
            await client.close()
        hits_ok = await _hit_latency(running, asks)
    return 1 if failed or (strict and not hits_ok) else 0


def _normalised(body: bytes) -> object:
    """An answer without what differs between two identical ones (ids, clock, page host)."""
    decoded = msgspec.json.decode(body)
    if isinstance(decoded, dict):
        decoded.pop("request_id", None)
        decoded.pop("serverTime", None)
        if "next_url" in decoded:
            decoded["next_url"] = urlsplit(decoded["next_url"]).query
    return decoded


async def _wrong_answers(
    answers: dict[str, tuple[int, bytes]], asks: list[Ask], polygon_url: str
) -> tuple[list[str], int]:
    """Distinct URLs whose answer differs from the simulator's own, and how many were checked."""
    endpoint = {ask.url: ask.endpoint for ask in asks}
    rng = random.Random(0)
    charts = sorted(url for url in answers if endpoint[url] == "aggs")
    checked = [url for url in answers if endpoint[url] != "aggs"]
    checked += rng.sample(charts, k=min(AGGS_CHECKED, len(charts)))
    wrong = []
    headers = {"Authorization": "Bearer bench-key"}
    async with httpx.AsyncClient(timeout=60, headers=headers) as http:
        for url in checked:
            upstream_url = polygon_url + url.replace("/v1/stocks/aggs/", "/v2/aggs/ticker/")
            direct = await http.get(upstream_url)
            status, body = answers[url]
            if direct.status_code != status or _normalised(direct.content) != _normalised(body):
                wrong.append(url)
    return wrong, len(checked)


async def _measure(
    client: RawHttp, asks: list[Ask], polygon: PolygonSimulator, polygon_url: str
) -> bool:
    """Replay ``asks`` on one connection; print the figures; True if something went wrong."""
    statuses: Counter[str] = Counter()
    hit_ms: list[float] = []
    answers: dict[str, tuple[int, bytes]] = {}
    bars = 0
    started = time.perf_counter()
    gc.disable()  # the client's own collections are not the service's latency
    for ask in asks:
        begin = time.perf_counter()
        status, headers, body = await client.get(ask.url)
        elapsed_ms = (time.perf_counter() - begin) * 1000
        if status != 200:
            print(f"unexpected {status} for {ask.url}: {body[:200]!r}")
            return True
        cache = headers["x-cache"]
        statuses[cache] += 1
        answers[ask.url] = (status, body)
        if ask.endpoint == "aggs":
            bars += int(RESULTS_COUNT.search(body, 0, 200).group(1))  # type: ignore[union-attr]
        if cache == "HIT":
            hit_ms.append(elapsed_ms)
    wall_s = time.perf_counter() - started
    gc.enable()

    calls_by_endpoint = Counter(endpoint_of(call.path) for call in polygon.calls)
    distinct_by_endpoint = Counter(ask.endpoint for ask in {a.url: a for a in asks}.values())
    calls = polygon.call_count
    distinct = len(answers)
    ratio = calls / distinct
    wrong, checked = await _wrong_answers(answers, asks, polygon_url)
    print(f"requests replayed:        {len(asks)} ({bars} bars served in {wall_s:.1f} s)")
    print(f"X-Cache:                  {dict(sorted(statuses.items()))}")
    print("per endpoint:             distinct URLs / upstream calls / ratio")
    for name, count in sorted(distinct_by_endpoint.items()):
        made = calls_by_endpoint[name]
        print(f"  {name:22}  {count:5} / {made:5} / {made / count:.3f}")
    for name in sorted(set(calls_by_endpoint) - set(distinct_by_endpoint)):
        print(f"  {name:22}      - / {calls_by_endpoint[name]:5} (made for other endpoints)")
    print(f"distinct request URLs:    {distinct}  (a URL-keyed cache fetches each once)")
    print(f"upstream calls:           {calls}")
    print(f"calls / distinct URLs:    {ratio:.3f}  (target <= 0.25)")
    print(
        f"wrong answers:            {len(wrong)} of {checked} URLs checked (every gateway URL, "
        f"{AGGS_CHECKED} chart URLs sampled)"
    )
    for url in wrong[:10]:
        print(f"  WRONG {url}")
    print(f"cache hit rate:           {statuses['HIT'] / len(asks):.1%}")
    print(
        f"hit latency (1 conn):     p50 {percentile(hit_ms, 50):.2f} ms, "
        f"p99 {percentile(hit_ms, 99):.2f} ms  ({len(hit_ms)} hits)"
    )
    ok = ratio <= 0.25 and not wrong
    print("call and answer targets met" if ok else "CALL OR ANSWER TARGETS MISSED")
    return bool(wrong)


async def _hit_latency(running: Running, asks: list[Ask]) -> bool:
    """Cache hits on every endpoint from 8 connections at once; True if every p99 < 5 ms."""
    by_endpoint: dict[str, list[str]] = {}
    for ask in asks:
        urls = by_endpoint.setdefault(ask.endpoint, [])
        if ask.url not in urls:
            urls.append(ask.url)
    clients = [await RawHttp.connect(running.base) for _ in range(HIT_CONNECTIONS)]
    server = psutil.Process(running.pid)
    where = f"ratesvc on core {SERVER_CORE}" if len(CORES) > 1 else "ratesvc not pinned (1 core)"
    print(f"hit latency, {HIT_CONNECTIONS} connections, {where}:")
    ok = True
    try:
        for endpoint, urls in sorted(by_endpoint.items()):
            latencies: list[float] = []

            async def one_connection(
                http: RawHttp,
                offset: int,
                urls: list[str] = urls,
                latencies: list[float] = latencies,
            ) -> None:
                for i in range(HIT_ROUNDS):
                    url = urls[(offset + i) % len(urls)]
                    begin = time.perf_counter()
                    _, headers, _ = await http.get(url)
                    if headers.get("x-cache") == "HIT":
                        latencies.append((time.perf_counter() - begin) * 1000)

            gc.disable()
            before = server.cpu_times()
            await asyncio.gather(*(one_connection(c, n * 7) for n, c in enumerate(clients)))
            after = server.cpu_times()
            gc.enable()
            cpu_s = after.user + after.system - before.user - before.system
            p99 = percentile(latencies, 99)
            ok = ok and p99 < 5.0
            print(
                f"  {endpoint:22}  p50 {percentile(latencies, 50):.2f} ms, p99 {p99:.2f} ms"
                f"  ({len(latencies)} hits; target p99 < 5 ms), "
                f"server CPU {cpu_s / (HIT_ROUNDS * HIT_CONNECTIONS) * 1e6:.0f} µs/request"
            )
    finally:
        for http in clients:
            await http.close()
    return ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a small replay for CI smoke runs")
    parser.add_argument("--sessions", type=int, help="user sessions (default 80, quick 20)")
    parser.add_argument("--actions", type=int, help="views per session (default 12, quick 8)")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument(
        "--strict", action="store_true", help="exit 1 when a target is missed, not only on errors"
    )
    parser.add_argument(
        "--charts-only", action="store_true", help="only the chart views, no watchlist or movers"
    )
    args = parser.parse_args()
    sessions = args.sessions or (20 if args.quick else 80)
    actions = args.actions or (8 if args.quick else 12)
    configure_logging("WARNING")
    asks = workload(sessions, actions, args.seed, charts_only=args.charts_only)
    kind = "chart sessions" if args.charts_only else "frontend sessions"
    print(f"workload: {sessions} {kind} x {actions} chart views, seed {args.seed}")
    # The client on uvloop, like the server: less of its own time in each latency.
    with (
        tempfile.TemporaryDirectory(prefix="ratesvc-bench-") as tmp,
        asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner,
    ):
        return runner.run(replay(asks, Path(tmp), strict=args.strict))


if __name__ == "__main__":
    raise SystemExit(main())
