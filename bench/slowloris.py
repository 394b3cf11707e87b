"""Slow and silent clients against `ratesvc serve` with no proxy in front.

Starts an embedded Redis and PostgreSQL and ``ratesvc serve`` (one worker,
production settings, ``RATESVC_HEADER_TIMEOUT_S`` as given) in a temporary
directory, then:

1. baseline: one client requests ``GET /v1/health`` and ``GET /v1/stats/login``
   in turn, for ``--duration`` seconds, over a kept-alive connection and over a
   new connection per request; latency percentiles;
2. opens ``--slow`` connections that trickle a request's headers one byte a
   second and ``--silent`` ones that send nothing, and measures the same while
   they are held (the measuring stops before the header timeout);
3. waits until the server has closed every one of them: how long each was
   held, and how many got a 408.

With two or more cores the server is pinned to the first one and this script
to the second.

    .venv/bin/python bench/slowloris.py                      # 500 + 500 connections, 10 s timeout
    .venv/bin/python bench/slowloris.py --quick              # CI smoke: 50 + 50, 2 s timeout
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import httpx
import support_path  # noqa: F401  (puts tests/ on sys.path for support.*)

from ratesvc.embedded import EmbeddedPostgres, EmbeddedRedis
from support.serve_process import serve_process

CORES = sorted(os.sched_getaffinity(0))
PARTIAL_HEAD = b"GET /v1/health HTTP/1.1\r\nHost: bench\r\nX-Slow: "
PATHS = ("/v1/health", "/v1/stats/login")


@dataclass(eq=False)
class Held:
    connected: bool = False
    seconds: float = 0.0
    answered_408: bool = False
    closed: bool = False


class Arrivals:
    """Set once every connection has connected or failed to."""

    def __init__(self, total: int) -> None:
        self.left = total
        self.all_in = asyncio.Event()

    def arrive(self) -> None:
        self.left -= 1
        if self.left <= 0:
            self.all_in.set()


def percentiles(latencies_s: list[float]) -> str:
    ms = sorted(x * 1000 for x in latencies_s)
    if not ms:
        return "no requests"
    p99 = ms[min(len(ms) - 1, int(len(ms) * 0.99))]
    return (
        f"{len(ms):6d} req  p50 {statistics.median(ms):7.2f} ms  p99 {p99:7.2f} ms"
        f"  max {ms[-1]:7.2f} ms"
    )


async def measure(base: str, duration_s: float) -> tuple[list[float], list[float], int]:
    """Latencies over one kept-alive connection and over new ones; failed requests."""
    kept: list[float] = []
    fresh: list[float] = []
    failures = 0
    deadline = time.monotonic() + duration_s
    limits = httpx.Limits(max_keepalive_connections=0)
    async with (
        httpx.AsyncClient(base_url=base, timeout=5) as keep_alive,
        httpx.AsyncClient(base_url=base, timeout=5, limits=limits) as new_each_time,
    ):
        n = 0
        while time.monotonic() < deadline:
            for client, into in ((keep_alive, kept), (new_each_time, fresh)):
                started = time.monotonic()
                try:
                    ok = (await client.get(PATHS[n % 2])).status_code == 200
                except httpx.HTTPError:
                    ok = False
                into.append(time.monotonic() - started)
                failures += not ok
            n += 1
    return kept, fresh, failures


async def hold(port: int, trickle: bool, held: Held, bound_s: float, arrivals: Arrivals) -> None:
    opened = time.monotonic()
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
    except OSError:
        arrivals.arrive()
        return
    held.connected = True
    arrivals.arrive()
    writer.write(PARTIAL_HEAD if trickle else b"")
    received = b""
    try:
        async with asyncio.timeout(bound_s):
            while True:
                try:
                    async with asyncio.timeout(1.0):
                        chunk = await reader.read(4096)
                except TimeoutError:
                    if trickle:
                        writer.write(b"a")
                    continue
                if not chunk:
                    break
                received += chunk
        held.closed = True
    except (TimeoutError, OSError):
        pass
    finally:
        writer.close()
        held.seconds = time.monotonic() - opened
        held.answered_408 = received.startswith(b"HTTP/1.1 408 ")


async def attack(base: str, args: argparse.Namespace) -> None:
    port = int(base.rsplit(":", 1)[1])
    kept, fresh, failures = await measure(base, args.duration)
    print(f"baseline, no slow clients ({args.duration:g} s)")
    print(f"  kept-alive connection  {percentiles(kept)}")
    print(f"  new connection each    {percentiles(fresh)}   failed: {failures}")

    bound_s = args.header_timeout + 30
    slow = [Held() for _ in range(args.slow)]
    silent = [Held() for _ in range(args.silent)]
    started = time.monotonic()
    everyone = slow + silent
    arrivals = Arrivals(len(everyone))
    tasks = [asyncio.create_task(hold(port, h in slow, h, bound_s, arrivals)) for h in everyone]
    await arrivals.all_in.wait()
    connected_s = time.monotonic() - started
    window = max(0.5, args.header_timeout - connected_s - 1.5)
    kept, fresh, failures = await measure(base, min(args.duration, window))
    still_open = sum(h.connected and not h.closed for h in everyone)
    print(
        f"with {args.slow} trickling + {args.silent} silent connections"
        f" (all connected in {connected_s:.2f} s;"
        f" {still_open} still held open at the end of the measurement)"
    )
    print(f"  kept-alive connection  {percentiles(kept)}")
    print(f"  new connection each    {percentiles(fresh)}   failed: {failures}")

    await asyncio.gather(*tasks)
    for name, group in (("trickling", slow), ("silent", silent)):
        seconds = sorted(h.seconds for h in group if h.closed)
        answered = sum(h.answered_408 for h in group)
        if not seconds:
            print(f"{name:10s} none closed by the server within {bound_s:g} s")
            continue
        print(
            f"{name:10s} closed by the server: {len(seconds)}/{len(group)}, held"
            f" {seconds[0]:.2f}-{seconds[-1]:.2f} s (median {statistics.median(seconds):.2f}),"
            f" 408 answers: {answered}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--slow", type=int, default=500, help="connections trickling headers")
    parser.add_argument("--silent", type=int, default=500, help="connections sending nothing")
    parser.add_argument(
        "--header-timeout", type=float, default=10.0, help="RATESVC_HEADER_TIMEOUT_S"
    )
    parser.add_argument("--duration", type=float, default=5.0, help="seconds of each measurement")
    parser.add_argument("--quick", action="store_true", help="smoke run: small and short")
    args = parser.parse_args()
    if args.quick:
        args.slow, args.silent, args.header_timeout, args.duration = 50, 50, 2.0, 1.0
    print(f"cores: server on {CORES[0]}, this script on {CORES[-1]} (of {len(CORES)})")
    with ExitStack() as stack:
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="slowloris-")))
        redis = EmbeddedRedis(workdir / "redis", persistent=False).start()
        stack.callback(redis.stop)
        postgres = EmbeddedPostgres(workdir / "pg" / "data").start()
        stack.callback(postgres.stop)
        environment = {
            "RATESVC_REDIS_URL": redis.url,
            "RATESVC_DATABASE_URL": postgres.url,
            "RATESVC_DATA_DIR": str(workdir / "data"),
            "RATESVC_RATE_LIMIT": "1000000000/minute",
            "RATESVC_HEADER_TIMEOUT_S": str(args.header_timeout),
        }
        prefix = ("taskset", "-c", str(CORES[0])) if len(CORES) > 1 else ()
        running = stack.enter_context(
            serve_process(environment, workdir / "serve.log", command_prefix=prefix)
        )
        if len(CORES) > 1:
            os.sched_setaffinity(0, {CORES[-1]})
        asyncio.run(attack(running.base, args))


if __name__ == "__main__":
    main()
