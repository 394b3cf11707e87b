"""SIGTERM under load: in-flight requests finish, queued updates drain, the exit is clean."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import asyncpg
import httpx
import pytest

from ratesvc.app import create_app
from ratesvc.config import Settings
from support.environment import store_environment
from support.processes import processes_mentioning
from support.serve_process import serve_process
from support.servers import eventually, serve_app

pytestmark = pytest.mark.slow

WORKERS = 16


async def _load(base: str, worker: int, stop: asyncio.Event, seen: dict[str, list[int]]) -> None:
    """Post events and read rates until the server stops answering."""
    async with httpx.AsyncClient(base_url=base, timeout=10) as client:
        n = 0
        while not stop.is_set():
            n += 1
            event_id = f"w{worker}-{n}"
            try:
                posted = await client.post(
                    "/v1/events",
                    json={"user_id": worker, "event_type": "shutdown", "timestamp": 1,
                          "event_id": event_id},
                )  # fmt: skip
                seen["statuses"].append(posted.status_code)
                if posted.status_code == 202:
                    seen["accepted"].append(n)
                read = await client.get("/v1/courses")
                seen["statuses"].append(read.status_code)
            except httpx.TransportError:
                return  # the server closed: new work is refused, nothing half-answered


async def test_sigterm_under_load_finishes_drains_and_exits_cleanly(
    settings: Settings, db: asyncpg.Connection, tmp_path: Path
) -> None:
    environment = {
        **store_environment(settings, tmp_path / "data"),
        "RATESVC_SIMULATE": "1",
        "RATESVC_RATE_LIMIT": "100000000/minute",
    }
    log_path = tmp_path / "serve.log"
    # Ready once rates flow; starting blocks the loop briefly, before any load exists.
    with serve_process(environment, log_path, ready_path="/v1/courses") as running:
        seen: dict[str, list[int]] = {"statuses": [], "accepted": []}
        stop = asyncio.Event()
        load = [asyncio.create_task(_load(running.base, w, stop, seen)) for w in range(WORKERS)]
        await eventually(lambda: _count(seen["accepted"]), lambda n: n >= 200)
        running.process.send_signal(signal.SIGTERM)  # to the process only, as `docker stop` does
        exit_code = await asyncio.to_thread(running.process.wait, 30)
        stop.set()
        await asyncio.wait_for(asyncio.gather(*load), 30)

    log = log_path.read_text()
    assert exit_code == 0, log
    assert "app_stopped" in log
    assert "queue_not_drained_at_shutdown" not in log
    assert "Traceback" not in log
    assert all(status < 500 for status in seen["statuses"]), sorted(set(seen["statuses"]))
    # The simulators and everything else the service started are gone.
    assert processes_mentioning(str(tmp_path / "data")) == []

    # Every 202 is kept: a fresh instance finds each accepted event stored exactly once.
    accepted = len(seen["accepted"])
    async with serve_app(create_app(settings)):
        await eventually(
            lambda: db.fetchval("SELECT count(*) FROM events"),
            lambda n: n == accepted,
            timeout_s=30,
        )


async def _count(items: list[int]) -> int:
    return len(items)
