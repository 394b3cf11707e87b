"""GET /v1/courses/history: one day of minutes (1,440 points) with 30 days stored, on one core.

Starts everything itself in a temporary directory, as bench/http_bench.py
does: an embedded Redis and PostgreSQL, ``ratesvc serve`` with one worker and
the built-in simulators.  Before measuring it stores 30 days of minute bars
for every direction and source (8 x 2 x 43,200 = 691,200 rows, the retention
default), ending at the current minute, so the drainer keeps adding to the
newest minute as it would in production.

Then, in each round (the routes interleaved, as in http_bench.py):

* ``GET /v1/courses`` (the reference: the hottest route);
* one day of 1m history (the default range, ``to`` = now: 1,441 buckets) of
  the 16 series in turn, with wrk at 1, 8 and 64 connections: the closed
  hours from the caches, the open hour from PostgreSQL at most once a second;

and once, before the wrk rounds, the cost of each interval with nothing
cached (the chunk cache emptied before every request, so PostgreSQL reads
and rolls up every minute of the range): the median and the worst of 20
requests, measured by the client, one request at a time.

    .venv/bin/python bench/history_bench.py             # 3 rounds of 10 s per route
    .venv/bin/python bench/history_bench.py --quick     # 1 round of 2 s
"""

from __future__ import annotations

import argparse
import asyncio
import math
import random
import statistics
import sys
import tempfile
import time
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import asyncpg
import httpx
from http_bench import (
    LOAD_CORE,
    Route,
    _pin,
    ensure_wrk,
    measure,
    print_table,
    stores_and_ratesvc,
)
from redis import Redis

from ratesvc.courses.directions import STANDARD
from ratesvc.courses.plugin import DEFAULT_SOURCES

DAYS = 30
START_PRICE = {"BTC": 67_000.0, "ETH": 3_500.0, "USDTTRC": 1.0, "USDTERC": 1.0}
SERIES = [(d.name, source) for d in STANDARD for source in (s.name for s in DEFAULT_SOURCES)]
ROTATE = """
paths = {%s}
local i = 0
request = function()
  i = i + 1
  return wrk.format("GET", paths[(i %% #paths) + 1])
end
"""


def one_day_paths() -> list[str]:
    return [f"/v1/courses/history?direction={d}&exchanger={s}" for d, s in SERIES]


def minute_rows(direction: str, source: str, end: datetime) -> list[tuple[object, ...]]:
    """A random walk of one series, one bar a minute for DAYS days up to ``end``."""
    rng = random.Random(f"{direction}{source}")
    price = START_PRICE[direction.split("-", maxsplit=1)[0]] * (
        92.5 if direction.endswith("RUB") else 1
    )
    minutes = DAYS * 1440
    rows = []
    for index in range(minutes):
        minute = end - timedelta(minutes=minutes - 1 - index)
        steps = [price * math.exp(rng.gauss(0, 0.0005 * k)) for k in (1, 2, 3)]
        high, low, close = max(price, *steps), min(price, *steps), steps[-1]
        rows.append(
            (
                direction,
                source,
                minute,
                *(Decimal(f"{v:.8f}") for v in (price, high, low, close)),
                minute,
                minute + timedelta(seconds=59),
                60,
            )
        )
        price = close
    return rows


async def seed(database_url: str) -> int:
    end = datetime.now(UTC).replace(second=0, microsecond=0)
    conn = await asyncpg.connect(database_url)
    total = 0
    try:
        # Through a staging table: the running drainer already wrote the newest minutes.
        await conn.execute("CREATE TEMPORARY TABLE seed (LIKE rate_history)")
        for direction, source in SERIES:
            rows = minute_rows(direction, source, end)
            await conn.copy_records_to_table("seed", records=rows)
            total += len(rows)
        await conn.execute("INSERT INTO rate_history SELECT * FROM seed ON CONFLICT DO NOTHING")
        await conn.execute("ANALYZE rate_history")
    finally:
        await conn.close()
    return total


def cold_costs(base: str, redis_url: str) -> list[tuple[str, int, float, float]]:
    """(shape, points, median ms, worst ms) with the chunk cache emptied before each request."""
    redis = Redis.from_url(redis_url)
    now = datetime.now(UTC)
    shapes = [
        ("1m, 1 day", "1m", timedelta(days=1)),
        ("5m, 1 day", "5m", timedelta(days=1)),
        ("15m, 7 days", "15m", timedelta(days=7)),
        ("1h, 30 days", "1h", timedelta(days=30)),
        ("1d, 30 days", "1d", timedelta(days=30)),
    ]
    found = []
    with httpx.Client(base_url=base, timeout=30) as client:
        for name, interval, span in shapes:
            params = {
                "direction": "BTC-RUB",
                "interval": interval,
                "from": (now - span).isoformat(),
                "to": now.isoformat(),
            }
            times, points = [], 0
            for _ in range(20):
                for key in redis.scan_iter("ratesvc:history:chunk:*", count=1000):
                    redis.delete(key)
                started = time.perf_counter()
                response = client.get("/v1/courses/history", params=params)
                times.append((time.perf_counter() - started) * 1000)
                response.raise_for_status()
                points = len(response.json()["points"])
            found.append((name, points, statistics.median(times), max(times)))
    redis.close()
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per route and round")
    parser.add_argument("--quick", action="store_true", help="1 round of 2 s")
    args = parser.parse_args()
    if args.quick:
        args.rounds, args.duration = 1, 2.0
    if not ensure_wrk():
        print("wrk is not installed (apt-get install wrk)", file=sys.stderr)
        return 2
    _pin(LOAD_CORE)()  # inherited by Redis and PostgreSQL; the server measured moves to core 0
    with tempfile.TemporaryDirectory(prefix="ratesvc-history-bench-") as tmp, ExitStack() as stack:
        workdir = Path(tmp)
        redis_url, postgres_url, process, base = stores_and_ratesvc(
            stack, workdir, "1000000000/minute"
        )
        started = time.monotonic()
        rows = asyncio.run(seed(postgres_url))
        print(f"stored {rows:,} minute bars in {time.monotonic() - started:.0f} s", file=sys.stderr)
        check = httpx.get(base + one_day_paths()[0], timeout=30)
        check.raise_for_status()
        points = len(check.json()["points"])
        print(f"one day of 1m: {points} points, {len(check.content):,} bytes", file=sys.stderr)

        cold = cold_costs(base, redis_url)
        paths = ", ".join(f'"{p}"' for p in one_day_paths())
        script = ROTATE % paths
        routes = [
            Route("GET /v1/courses", "/v1/courses", 64),
            # Named apart: measure() keeps one summary per name.
            *(
                Route(f"history 1 day 1m ({points} pts) c={c}", "/v1/courses/history", c, script)
                for c in (1, 8, 64)
            ),
        ]
        done = measure(
            routes, {"ratesvc": ([process.pid], base)}, args.rounds, args.duration, workdir
        )
        print_table(done, args.rounds, args.duration, 1)
        print("\nNothing cached (chunk cache emptied before each request), one request at a time:")
        print(f"{'shape':<14} {'points':>6} {'median ms':>10} {'worst ms':>9}")
        for name, count, median_ms, worst_ms in cold:
            print(f"{name:<14} {count:>6} {median_ms:>10.1f} {worst_ms:>9.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
