"""A cold watchlist page on Polygon's free plan (5 calls a minute): how long, and what clients see.

Starts embedded Redis and PostgreSQL, the Polygon simulator enforcing 5
calls a minute, and ratesvc (``RATESVC_POLYGON_CALLS_PER_MINUTE=5``, the
default budget wait of 5 s) in a child process, then opens a watchlist page
with an empty cache: the previous close of 20 tickers, the details of the
first one and the market status, all at once as a browser does.  Then the
details of the other 19 tickers, which need more calls than the plan has
left this minute.

    .venv/bin/python bench/free_plan_watchlist.py
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from collections import Counter
from pathlib import Path

import httpx
from stocks_workload import stocks_service

from ratesvc.log import configure_logging
from ratesvc_sim.polygon import PolygonSimulator
from ratesvc_sim.polygon_reference import TICKERS

WATCHLIST = TICKERS[:20]


async def timed(
    client: httpx.AsyncClient, path: str, started: float
) -> tuple[httpx.Response, float]:
    response = await client.get(path)
    return response, time.monotonic() - started


def summary(answers: list[tuple[httpx.Response, float]]) -> str:
    seen = Counter(f"{r.status_code} {r.headers.get('x-cache', '-')}" for r, _ in answers)
    slowest = max(seconds for _, seconds in answers)
    retry = sorted({r.headers["retry-after"] for r, _ in answers if "retry-after" in r.headers})
    waits = f", Retry-After {', '.join(retry)} s" if retry else ""
    return f"{dict(sorted(seen.items()))}, all answered after {slowest:.2f} s{waits}"


async def main(work_dir: Path) -> None:
    polygon = PolygonSimulator(seed=1, calls_per_minute=5)
    plan = {"RATESVC_POLYGON_CALLS_PER_MINUTE": "5"}
    async with (
        stocks_service(work_dir, polygon, plan) as running,
        httpx.AsyncClient(base_url=running.base, timeout=60) as client,
    ):
        started = time.monotonic()
        page = [f"/v2/aggs/ticker/{t}/prev" for t in WATCHLIST]
        page += [f"/v3/reference/tickers/{WATCHLIST[0]}", "/v1/marketstatus/now"]
        answers = await asyncio.gather(*(timed(client, p, started) for p in page))
        print(f"cold watchlist page ({len(page)} requests): {summary(answers)}")
        print(f"  upstream calls: {polygon.call_count} (plan: 5 a minute)")
        started = time.monotonic()
        more = [f"/v3/reference/tickers/{t}" for t in WATCHLIST[1:]]
        answers = await asyncio.gather(*(timed(client, p, started) for p in more))
        print(f"then details of {len(more)} more tickers: {summary(answers)}")
        refused = sum(1 for c in polygon.calls if c.status == 429)
        print(f"  upstream calls in all: {polygon.call_count}; Polygon 429s: {refused}")


if __name__ == "__main__":
    configure_logging("WARNING")
    with tempfile.TemporaryDirectory(prefix="ratesvc-free-plan-") as tmp:
        asyncio.run(main(Path(tmp)))
