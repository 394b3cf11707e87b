"""Benchmark of POST /v1/events: accepted events per second, p99 latency, drain lag.

Starts everything itself: an embedded Redis and PostgreSQL in a temporary
directory, ``ratesvc serve`` with one worker (pinned to one core when
``taskset`` exists), and wrk as the load generator (``apt-get install wrk``).
The rate limiter stays on, with a limit no single benchmark client reaches.

While wrk runs, the stream is sampled every 100 ms: its length and the age of
its oldest entry (the drain lag: how long an accepted event waits before it is
in PostgreSQL).  Afterwards the rows in PostgreSQL are checked against the
events wrk got a 202 for.

    .venv/bin/python bench/events_bench.py            # 20 s, 64 connections
    .venv/bin/python bench/events_bench.py --quick    # 3 s smoke run for CI
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import support_path  # noqa: F401  (puts tests/ on sys.path for support.*)
from redis import Redis

from ratesvc.embedded import EmbeddedPostgres, EmbeddedRedis
from ratesvc.events import keys
from support.serve_process import ServeFailedError, serve_process

WRK_SCRIPT = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = [==[%s]==]
done = function(summary, latency, requests)
  io.write(string.format("RESULT %%d %%d %%d %%d %%d %%d\\n",
    summary.requests, summary.errors.status, summary.errors.connect + summary.errors.read
      + summary.errors.write + summary.errors.timeout,
    latency:percentile(50), latency:percentile(99), latency.max))
end
"""


@dataclass
class LagSamples:
    lengths: list[int] = field(default_factory=list)
    lags_s: list[float] = field(default_factory=list)

    def sample_until(self, redis: Redis, stop: threading.Event) -> None:
        while not stop.wait(0.1):
            length = int(redis.xlen(keys.STREAM))
            oldest = redis.xrange(keys.STREAM, count=1)
            lag = 0.0
            if oldest and isinstance(entry_id := oldest[0][0], bytes):  # <ms>-<seq>
                lag = max(0.0, time.time() - int(entry_id.split(b"-")[0]) / 1000)
            self.lengths.append(length)
            self.lags_s.append(lag)


def percentile(values: list[float], p: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]


@contextmanager
def service(redis_url: str, database_url: str, workdir: Path) -> Iterator[str]:
    environment = {
        "RATESVC_REDIS_URL": redis_url,
        "RATESVC_DATABASE_URL": database_url,
        "RATESVC_DATA_DIR": str(workdir / "data"),
        "RATESVC_WORKERS": "1",
        "RATESVC_LOG_LEVEL": "WARNING",
        "RATESVC_RATE_LIMIT": "1000000000/minute",  # limiter on, never reached
    }
    # The service gets one core (taskset also pins what it starts).
    pin = ["taskset", "-c", "0"] if shutil.which("taskset") and (os.cpu_count() or 1) > 1 else []
    try:
        with serve_process(
            environment, workdir / "serve.log", ready_path="/v1/ready", command_prefix=pin
        ) as running:
            yield running.base
    except ServeFailedError as exc:
        raise SystemExit(str(exc)) from None


def run_wrk(
    base: str, body: str, duration_s: int, connections: int, workdir: Path
) -> dict[str, float]:
    script = workdir / "post_events.lua"
    script.write_text(WRK_SCRIPT % body)
    command = [
        "wrk",
        "-t1",
        f"-c{connections}",
        f"-d{duration_s}s",
        "--timeout",
        "5s",
        "-s",
        str(script),
        f"{base}/v1/events",
    ]
    if shutil.which("taskset") and (os.cpu_count() or 1) > 1:
        command = ["taskset", "-c", "1", *command]
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    match = re.search(r"RESULT (\d+) (\d+) (\d+) (\d+) (\d+) (\d+)", output)
    if match is None:
        raise SystemExit(f"unexpected wrk output:\n{output}")
    requests, non_2xx, socket_errors, p50_us, p99_us, max_us = map(int, match.groups())
    return {
        "requests": requests,
        "non_2xx": non_2xx,
        "socket_errors": socket_errors,
        "p50_ms": p50_us / 1000,
        "p99_ms": p99_us / 1000,
        "max_ms": max_us / 1000,
    }


async def stored_events(database_url: str) -> int:
    conn = await asyncpg.connect(database_url)
    try:
        count: int = await conn.fetchval("SELECT count(*) FROM events")
        return count
    finally:
        await conn.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 s, 16 connections: a smoke run")
    parser.add_argument("--duration", type=int, default=20, help="seconds of load")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument(
        "--batch", type=int, default=1, help="events per request (1 = single-event form)"
    )
    args = parser.parse_args()
    if args.quick:
        args.duration, args.connections = 3, 16
    if shutil.which("wrk") is None:
        print("wrk not found: apt-get install wrk", file=sys.stderr)
        return 2

    one = {
        "user_id": 42,
        "event_type": "chart_view",
        "timestamp": 1_700_000_000,
        "payload": {"pair": "BTC/USD", "range": "1d"},
    }
    body = json.dumps(one if args.batch == 1 else [one] * args.batch, separators=(",", ":"))

    with tempfile.TemporaryDirectory(prefix="ratesvc-bench-") as tmp:
        workdir = Path(tmp)
        redis_server = EmbeddedRedis(workdir / "redis", persistent=False).start()
        postgres = EmbeddedPostgres(workdir / "pg" / "data").start()
        try:
            with service(redis_server.url, postgres.url, workdir) as base:
                redis = Redis.from_url(redis_server.url)
                samples = LagSamples()
                stop = threading.Event()
                sampler = threading.Thread(
                    target=samples.sample_until, args=(redis, stop), daemon=True
                )
                sampler.start()
                try:
                    result = run_wrk(base, body, args.duration, args.connections, workdir)
                finally:
                    stop.set()
                    sampler.join()

                drain_started = time.monotonic()
                while int(redis.xlen(keys.STREAM)) > 0 and time.monotonic() - drain_started < 60:
                    time.sleep(0.05)
                drained_after_s = time.monotonic() - drain_started
                accepted_events = int(result["requests"] - result["non_2xx"]) * args.batch
                stored = asyncio.run(stored_events(postgres.url))
        finally:
            postgres.stop()
            redis_server.stop()

    # wrk stops counting at the deadline; requests still in flight then were accepted
    # too, so up to one request per connection more may be stored than wrk saw answered.
    complete = accepted_events <= stored <= accepted_events + args.connections * args.batch
    rps = result["requests"] / args.duration
    rows = [
        ("duration / connections", f"{args.duration} s / {args.connections}"),
        ("events per request", f"{args.batch}"),
        ("requests answered", f"{int(result['requests'])} ({int(result['non_2xx'])} non-2xx, {int(result['socket_errors'])} socket errors)"),
        ("accepted events/s", f"{(result['requests'] - result['non_2xx']) * args.batch / args.duration:,.0f}"),
        ("requests/s", f"{rps:,.0f}"),
        ("latency p50 / p99 / max", f"{result['p50_ms']:.2f} / {result['p99_ms']:.2f} / {result['max_ms']:.2f} ms"),
        ("drain lag p50 / p99 / max", f"{percentile(samples.lags_s, 50):.3f} / {percentile(samples.lags_s, 99):.3f} / {max(samples.lags_s, default=0):.3f} s"),
        ("stream length max", f"{max(samples.lengths, default=0)}"),
        ("drained after load", f"{drained_after_s:.2f} s"),
        ("events stored / answered 202", f"{stored} / {accepted_events}  {'OK' if complete else 'MISSING EVENTS'}"),
    ]  # fmt: skip
    width = max(len(name) for name, _ in rows)
    print(f"\nPOST /v1/events on {os.cpu_count()} cores (service pinned to one)")
    for name, value in rows:
        print(f"  {name:<{width}}  {value}")
    return 0 if complete else 1


if __name__ == "__main__":
    raise SystemExit(main())
