"""Requests per second of each hot route, next to nginx serving the same bytes.

Starts everything itself in a temporary directory: an embedded Redis and
PostgreSQL, ``ratesvc serve`` with one worker and the built-in simulators
(``RATESVC_SIMULATE=1``), production settings otherwise (rate limiter on with
a limit one wrk client never reaches, metrics on, INFO logging), and nginx
serving the ``/v1/courses`` body as a static file.  On a machine with two or
more cores, the process measured (ratesvc's serving process, or nginx) has
core 0 to itself; wrk, Redis, PostgreSQL and the simulators share core 1, as
the stores would run elsewhere in production.

Each round measures every route once with ``wrk -t1`` (the routes
interleaved, so a noisy neighbour hurts them all alike); the table gives the
median of the rounds and the spread (min-max) of requests/s:

* requests/s, latency p50 and p99 as wrk saw them;
* server CPU per request: user+system time of the serving process (or of
  nginx) over the run, divided by the requests answered;
* server CPU per request against the default ``/v1/courses`` answer's, the
  filtered shapes' target being at most 1.25x;
* the ratio of the route's requests/s to nginx's.

    .venv/bin/python bench/http_bench.py                   # 5 rounds of 10 s per route
    .venv/bin/python bench/http_bench.py --quick           # CI smoke: 1 round of 2 s, no targets
    .venv/bin/python bench/http_bench.py --soak 600        # then 10 min of mixed load, RSS sampled

wrk comes from the distribution (``apt-get install wrk``, tried when missing);
without it the script says so and exits 0 with ``--quick`` (a smoke run must
not fail on a missing tool), 2 otherwise.  nginx is optional: without it the
ratio column is empty.  Results are also written as JSON under
``bench/results/``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import httpx
import support_path  # noqa: F401  (puts tests/ on sys.path for support.*)

from ratesvc.embedded import EmbeddedPostgres, EmbeddedRedis, free_port
from support.serve_process import ServeFailedError, serve_process

BENCH_DIR = Path(__file__).resolve().parent
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
CORES = sorted(os.sched_getaffinity(0))
"""The cores this script may use (a container may get other numbers than 0 and 1)."""
SERVER_CORE = CORES[0]
LOAD_CORE = CORES[-1]
STOCKS_PATH = "/v1/stocks/aggs/AAPL/range/1/minute/2024-06-27/2024-06-27"
"""One closed session of minute bars (390 bars): a cache hit after the first request."""
EVENT_BODY = (
    '{"user_id":42,"event_type":"chart_view","timestamp":1700000000,'
    '"payload":{"pair":"BTC/USD","range":"1d"}}'
)

WRK_DONE = """
done = function(summary, latency, requests)
  io.write(string.format("RESULT %d %d %d %d %d\\n",
    summary.requests, summary.errors.status, summary.errors.connect + summary.errors.read
      + summary.errors.write + summary.errors.timeout,
    latency:percentile(50), latency:percentile(99)))
end
"""
WRK_POST = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = [==[%s]==]
"""
WRK_MIX = """
local paths = {"/v1/courses", "/v1/courses", "/v1/courses", "/v1/courses?exchanger=coingecko",
               "/v1/courses?direction=BTC-USD,ETH-USD", "%s", "/v1/health"}
local i = 0
request = function()
  i = i + 1
  if i %% 8 == 0 then
    return wrk.format("POST", "/v1/events", {["Content-Type"] = "application/json"}, [==[%s]==])
  end
  return wrk.format("GET", paths[(i %% #paths) + 1])
end
"""


@dataclass(frozen=True)
class Route:
    name: str
    path: str
    connections: int
    script: str = ""
    target: str = "ratesvc"
    """``ratesvc`` or ``nginx``: which server answers (and whose CPU is counted)."""


EIGHT_ODD = (
    "direction=usdterc-rub,Eth-Usd&direction=BTC-rub,usdttrc-usd,ETH-RUB"
    "&direction=btc-usd,USDTTRC-RUB,usdterc-usd"
)
"""All eight directions, repeated and comma-separated, in no order and mixed case."""
DEFAULT_ROUTE = "GET /v1/courses"
SHAPE_CPU_TARGET = 1.25
"""Every /v1/courses shape within this multiple of the default's CPU per answer."""

NGINX = Route("nginx static file", "/v1/courses", 64, target="nginx")
RATE_ROUTES = (
    Route(DEFAULT_ROUTE, "/v1/courses", 64),
    Route("GET /v1/courses?exchanger=binance", "/v1/courses?exchanger=binance", 64),
    Route("GET /v1/courses?exchanger=coingecko", "/v1/courses?exchanger=coingecko", 64),
    Route("GET /v1/courses?direction=BTC-USD", "/v1/courses?direction=BTC-USD", 64),
    Route("GET /v1/courses?direction= 8, odd case", f"/v1/courses?{EIGHT_ODD}", 64),
    Route(
        "GET /v1/courses?exchanger= + 2 directions",
        "/v1/courses?exchanger=CoinGecko&direction=eth-rub,BTC-USD",
        64,
    ),
    Route("GET /v1/convert?from=BTC&to=RUB", "/v1/convert?from=BTC&to=RUB&amount=0.5", 64),
)
"""The routes compared with the default /v1/courses answer (CPU per answer)."""
ROUTES = (
    NGINX,
    *RATE_ROUTES,
    Route("GET /v1/stocks/aggs (hit, 390 bars)", STOCKS_PATH, 8),
    Route("POST /v1/events", "/v1/events", 64, script=WRK_POST % EVENT_BODY),
    Route("GET /v1/health (plain Litestar)", "/v1/health", 64),
)


@dataclass
class Sample:
    rps: float
    p50_ms: float
    p99_ms: float
    cpu_us: float
    errors: int


@dataclass
class Summary:
    name: str
    connections: int
    samples: list[Sample] = field(default_factory=list)

    def median(self, pick: Callable[[Sample], float]) -> float:
        return statistics.median(pick(s) for s in self.samples)


def pin_process(pid: int, core: int) -> None:
    """Every thread of ``pid`` to ``core`` (sched_setaffinity on a pid moves one thread)."""
    if len(CORES) < 2:
        return
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(ProcessLookupError):
            os.sched_setaffinity(int(task.name), {core})


def _pin(core: int) -> Callable[[], None]:
    def pin() -> None:
        if len(CORES) > 1:
            os.sched_setaffinity(0, {core})

    return pin


def cpu_seconds(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except FileNotFoundError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / CLOCK_TICKS


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except (FileNotFoundError, ProcessLookupError):
                continue
            if int(stat[1]) == pid:
                found.append(int(entry.name))
    return found


def ensure_wrk() -> bool:
    if shutil.which("wrk"):
        return True
    if shutil.which("apt-get") and os.geteuid() == 0:
        print("wrk not found; installing it with apt-get", file=sys.stderr)
        install = ["apt-get", "install", "-y", "-qq", "wrk"]
        if subprocess.run(install, check=False, capture_output=True).returncode != 0:
            subprocess.run(["apt-get", "update", "-qq"], check=False, capture_output=True)
            subprocess.run(install, check=False, capture_output=True)
    return shutil.which("wrk") is not None


def run_wrk(
    url: str, route: Route, duration_s: float, workdir: Path
) -> tuple[int, int, int, float, float]:
    script = workdir / f"wrk-{abs(hash(route.name))}.lua"
    script.write_text(route.script + WRK_DONE)
    command = [
        "wrk", "-t1", f"-c{route.connections}", f"-d{max(1, round(duration_s))}s", "--timeout", "5s",
        "-s", str(script), url,
    ]  # fmt: skip
    result = subprocess.run(
        command, capture_output=True, text=True, check=True, preexec_fn=_pin(LOAD_CORE)
    )
    match = re.search(r"RESULT (\d+) (\d+) (\d+) (\d+) (\d+)", result.stdout)
    if match is None:
        raise SystemExit(f"unexpected wrk output:\n{result.stdout}{result.stderr}")
    requests, non_2xx, socket_errors, p50_us, p99_us = map(int, match.groups())
    return requests, non_2xx, socket_errors, p50_us / 1000, p99_us / 1000


@contextmanager
def ratesvc(
    redis_url: str, database_url: str, workdir: Path, rate_limit: str, workers: int = 1
) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    environment = {
        "RATESVC_REDIS_URL": redis_url,
        "RATESVC_DATABASE_URL": database_url,
        "RATESVC_DATA_DIR": str(workdir / "data"),
        "RATESVC_WORKERS": str(workers),
        "RATESVC_SIMULATE": "1",
        "RATESVC_LOG_LEVEL": "INFO",
        "RATESVC_RATE_LIMIT": rate_limit,
    }
    try:
        with serve_process(
            environment, workdir / "serve.log", ready_path="/v1/courses", timeout_s=90
        ) as running:
            # The serving process alone on the server core; its simulators go to the load core.
            if workers == 1:
                pin_process(running.process.pid, SERVER_CORE)
                for child in children(running.process.pid):
                    pin_process(child, LOAD_CORE)
            yield running.process, running.base
    except ServeFailedError as exc:
        raise SystemExit(str(exc)) from None


def stores_and_ratesvc(
    stack: ExitStack, workdir: Path, rate_limit: str, workers: int = 1
) -> tuple[str, str, subprocess.Popen[bytes], str]:
    """Embedded Redis and PostgreSQL, then ``ratesvc`` on them, all stopped with ``stack``.

    Returns (Redis URL, PostgreSQL URL, the serving process, its base URL).
    """
    redis_server = EmbeddedRedis(workdir / "redis", persistent=False).start()
    stack.callback(redis_server.stop)
    postgres = EmbeddedPostgres(workdir / "pg" / "data").start()
    stack.callback(postgres.stop)
    process, base = stack.enter_context(
        ratesvc(redis_server.url, postgres.url, workdir, rate_limit, workers)
    )
    return redis_server.url, postgres.url, process, base


NGINX_CONF = """
worker_processes 1;
daemon off;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {dir}/body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    server {{
        listen 127.0.0.1:{port};
        location = /v1/courses {{
            default_type application/json;
            alias {dir}/courses.json;
        }}
    }}
}}
"""


@contextmanager
def nginx(body: bytes, workdir: Path) -> Iterator[tuple[list[int], str] | None]:
    binary = shutil.which("nginx") or (
        "/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None
    )
    if binary is None:
        print("nginx not found: no static-file reference", file=sys.stderr)
        yield None
        return
    root = workdir / "nginx"
    root.mkdir()
    for path in (workdir, root):
        path.chmod(0o755)  # nginx workers run as an unprivileged user
    (root / "courses.json").write_bytes(body)
    (root / "courses.json").chmod(0o644)
    port = free_port()
    (root / "nginx.conf").write_text(NGINX_CONF.format(dir=root, port=port))
    process = subprocess.Popen(
        [binary, "-p", str(root), "-c", str(root / "nginx.conf"), "-e", str(root / "error.log")],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                if httpx.get(f"{base}/v1/courses", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                print("nginx did not start: no static-file reference", file=sys.stderr)
                yield None
                return
            time.sleep(0.05)
        pids = [process.pid, *children(process.pid)]
        for pid in pids:
            pin_process(pid, SERVER_CORE)
        yield pids, base
    finally:
        process.terminate()
        process.wait(timeout=10)


def soak(base: str, pid: int, duration_s: float, workdir: Path) -> list[tuple[float, float, float]]:
    """Mixed load for ``duration_s``; (elapsed s, RSS MB, requests/s of the last slice)."""
    route = Route("mix", "/", 64, script=WRK_MIX % (STOCKS_PATH, EVENT_BODY))
    points = [(0.0, rss_mb(pid), 0.0)]
    slice_s = 30.0
    started = time.monotonic()
    while (elapsed := time.monotonic() - started) < duration_s:
        length = max(1, round(min(slice_s, duration_s - elapsed)))
        requests, *_ = run_wrk(base + "/", route, length, workdir)
        points.append((time.monotonic() - started, rss_mb(pid), requests / length))
        print(
            f"  soak {points[-1][0]:6.0f} s  RSS {points[-1][1]:6.1f} MB  {points[-1][2]:8,.0f} req/s",
            flush=True,
        )
    return points


def profile(
    pid: int, base: str, route: Route, *, out: Path, duration_s: float, workdir: Path
) -> None:
    """py-spy samples the serving process while wrk loads ``route``."""
    spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    recorder = subprocess.Popen(
        [spy, "record", "--pid", str(pid), "--format", "raw", "--rate", "250",
         "--duration", str(round(duration_s)), "--nonblocking", "--output", str(out)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    if len(CORES) > 1:
        os.sched_setaffinity(recorder.pid, {LOAD_CORE})
    time.sleep(0.5)
    run_wrk(base + route.path, route, duration_s, workdir)
    recorder.wait(timeout=60)
    print(f"py-spy profile of {route.name}: {out}", file=sys.stderr)


def print_table(summaries: list[Summary], rounds: int, duration_s: float, workers: int) -> None:
    nginx_rps = next(
        (s.median(lambda x: x.rps) for s in summaries if s.name.startswith("nginx")), None
    )
    default_cpu = next(
        (s.median(lambda x: x.cpu_us) for s in summaries if s.name == DEFAULT_ROUTE), None
    )
    rate_names = {r.name for r in RATE_ROUTES}
    header = f"{'route':<42} {'conns':>5} {'req/s':>8} {'spread':>15} {'p50 ms':>7} {'p99 ms':>7} {'CPU µs/req':>10} {'vs default':>10} {'vs nginx':>8}"
    print(f"\n{rounds} round(s) of {duration_s:g} s per route; medians; spread = min-max req/s")
    print(
        f"core {SERVER_CORE}: the serving process (or nginx); core {LOAD_CORE}: wrk -t1, Redis, "
        f"PostgreSQL, simulators ({len(CORES)} cores)"
        if workers == 1
        else f"{workers} workers, not pinned; wrk -t1 on core {LOAD_CORE} ({len(CORES)} cores)"
    )
    print(header)
    print("-" * len(header))
    for s in summaries:
        rps = [x.rps for x in s.samples]
        ratio = f"{s.median(lambda x: x.rps) / nginx_rps:.2f}" if nginx_rps else "-"
        errors = sum(x.errors for x in s.samples)
        cpu = s.median(lambda x: x.cpu_us)
        versus = f"{cpu / default_cpu:.2f}" if default_cpu and s.name in rate_names else "-"
        print(
            f"{s.name:<42} {s.connections:>5} {s.median(lambda x: x.rps):>8,.0f} "
            f"{f'{min(rps):,.0f}-{max(rps):,.0f}':>15} {s.median(lambda x: x.p50_ms):>7.2f} "
            f"{s.median(lambda x: x.p99_ms):>7.2f} {cpu:>10.0f} {versus:>10} {ratio:>8}"
            + (f"  ({errors} errors)" if errors else "")
        )
    shapes = [s for s in summaries if s.name.startswith(DEFAULT_ROUTE + "?")]
    if default_cpu and len(shapes) > 1:
        worst_cpu = max(s.median(lambda x: x.cpu_us) for s in shapes) / default_cpu
        worst_p99 = max(s.median(lambda x: x.p99_ms) for s in shapes)
        print(
            f"\n/v1/courses shapes: CPU per answer at most {worst_cpu:.2f}x the default's "
            f"(target {SHAPE_CPU_TARGET}x), p99 at most {worst_p99:.2f} ms (target 15 ms)"
        )


def measure(
    routes: list[Route],
    targets: dict[str, tuple[list[int], str]],
    rounds: int,
    duration_s: float,
    workdir: Path,
) -> list[Summary]:
    """Every route once per round, in order; the targets are (pids whose CPU counts, base URL)."""
    summaries = {r.name: Summary(r.name, r.connections) for r in routes if r.target in targets}
    for round_no in range(1, rounds + 1):
        for route in routes:
            if route.target not in targets:
                continue
            pids, url_base = targets[route.target]
            before = cpu_seconds(pids)
            requests, non_2xx, errors, p50, p99 = run_wrk(
                url_base + route.path, route, duration_s, workdir
            )
            cpu_us = (cpu_seconds(pids) - before) / max(requests, 1) * 1e6
            summaries[route.name].samples.append(
                Sample(requests / duration_s, p50, p99, cpu_us, non_2xx + errors)
            )
        print(f"round {round_no}/{rounds} done", file=sys.stderr, flush=True)
    return list(summaries.values())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per route and round")
    parser.add_argument("--only", help="measure only routes whose name contains this")
    parser.add_argument(
        "--soak",
        type=float,
        default=0.0,
        help="seconds of mixed load after the rounds, RSS sampled",
    )
    parser.add_argument(
        "--profile",
        metavar="FILE",
        help="also record one route under load with py-spy (collapsed stacks to FILE)",
    )
    parser.add_argument(
        "--profile-route", default="GET /v1/courses", help="the route --profile records"
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=1,
        help="RATESVC_WORKERS; above 1 nothing is pinned and CPU counts every worker",
    )
    parser.add_argument("--quick", action="store_true", help="1 round of 2 s: a smoke run for CI")
    parser.add_argument(
        "--rate-limit", default="1000000000/minute", help="RATESVC_RATE_LIMIT (limiter stays on)"
    )
    args = parser.parse_args()
    if args.quick:
        args.rounds, args.duration = 1, 2.0
    if not ensure_wrk():
        print(
            "wrk is not installed and could not be installed (apt-get install wrk): skipping",
            file=sys.stderr,
        )
        return 0 if args.quick else 2
    if args.workers == 1:
        _pin(LOAD_CORE)()  # inherited by Redis and PostgreSQL; the server measured moves to core 0
    routes = [r for r in ROUTES if not args.only or args.only in r.name or r.target == "nginx"]

    with tempfile.TemporaryDirectory(prefix="ratesvc-http-bench-") as tmp, ExitStack() as stack:
        workdir = Path(tmp)
        _, _, process, base = stores_and_ratesvc(stack, workdir, args.rate_limit, args.workers)
        body = httpx.get(f"{base}/v1/courses").content
        warm = httpx.get(base + STOCKS_PATH, timeout=30)
        if warm.status_code != 200:
            raise SystemExit(
                f"stocks warm-up failed: {warm.status_code} {warm.text[:200]}\n{(workdir / 'serve.log').read_text()[-3000:]}"
            )
        reference = stack.enter_context(nginx(body, workdir))
        serving = [process.pid]
        if args.workers > 1:  # uvicorn's worker processes (and the simulators: a rounding error)
            serving += children(process.pid)
        targets = {"ratesvc": (serving, base)}
        if reference is not None:
            targets["nginx"] = reference
        done = measure(routes, targets, args.rounds, args.duration, workdir)
        if args.profile:
            route = next(r for r in ROUTES if r.name.startswith(args.profile_route))
            profile(
                process.pid,
                base,
                route,
                out=Path(args.profile),
                duration_s=args.duration,
                workdir=workdir,
            )
        print_table(done, args.rounds, args.duration, args.workers)
        points = soak(base, process.pid, args.soak, workdir) if args.soak else []
        if points:
            print(f"\nRSS of the serving process over {args.soak:g} s of mixed load: "
                  f"start {points[0][1]:.1f} MB, after 60 s {next((p[1] for p in points if p[0] >= 60), points[-1][1]):.1f} MB, "
                  f"end {points[-1][1]:.1f} MB, max {max(p[1] for p in points):.1f} MB")  # fmt: skip
        else:
            print(f"\nRSS of the serving process: {rss_mb(process.pid):.1f} MB")
        out = BENCH_DIR / "results"
        out.mkdir(exist_ok=True)
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        (out / f"http-{stamp}.json").write_text(
            json.dumps(
                {"args": vars(args), "routes": [asdict(s) for s in done], "soak": points}, indent=1
            )
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
