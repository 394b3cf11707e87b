"""CPU per Redis command: redis.asyncio against ratesvc's pipelined client.

    .venv/bin/python bench/redis_clients.py

Starts an embedded Redis on core 1 (when there are two cores), runs this
process on core 0 under uvloop, and times HMGET of a small (400 B) and a
large (100 KB, one session of minute bars) value, one command at a time and
eight at once.  CPU is this process's user+system time per command, event
loop included.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import uvloop
from redis.asyncio import Redis

from ratesvc.embedded import EmbeddedRedis
from ratesvc.pipelined import PipelinedRedis

COMMANDS = 4000


async def measure(call: Callable[[], Awaitable[Any]], concurrency: int) -> tuple[float, float]:
    async def worker() -> None:
        for _ in range(COMMANDS // concurrency):
            await call()

    cpu, wall = time.process_time(), time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return (time.process_time() - cpu) / COMMANDS * 1e6, COMMANDS / (time.perf_counter() - wall)


async def run(url: str) -> None:
    pooled = Redis.from_url(url)
    pipelined = PipelinedRedis(url)
    try:
        for size in (400, 100_000):
            await pooled.hset("bench:h", "f", b"x" * size)
            clients: dict[str, Callable[[], Awaitable[Any]]] = {
                "redis.asyncio": lambda: pooled.hmget("bench:h", ["f"]),
                "pipelined": lambda: pipelined.execute("HMGET", "bench:h", "f"),
            }
            for name, call in clients.items():
                for concurrency in (1, 8):
                    cpu_us, rate = await measure(call, concurrency)
                    print(
                        f"{name:<14} {size:>6} B  {concurrency} at once  "
                        f"{cpu_us:6.1f} µs CPU/command  {rate:8,.0f} commands/s"
                    )
    finally:
        await pipelined.aclose()
        await pooled.aclose()


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="ratesvc-redis-bench-") as tmp:
        server = EmbeddedRedis(Path(tmp), persistent=False).start()
        try:
            pidfile = Path(tmp) / "redis.pid"
            if (os.cpu_count() or 1) > 1 and pidfile.exists():
                os.sched_setaffinity(0, {0})
                os.sched_setaffinity(int(pidfile.read_text()), {1})
            uvloop.run(run(server.url))
        finally:
            server.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
