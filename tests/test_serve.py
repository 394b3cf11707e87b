"""`ratesvc serve` as a user runs it: embedded stores, data kept, clean stop on SIGTERM."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import asyncpg
import httpx
import pytest
from redis import Redis

from support.processes import processes_mentioning
from support.serve_process import serve_process

pytestmark = pytest.mark.slow


@contextmanager
def running_serve(data_dir: Path, log_path: Path) -> Iterator[tuple[str, dict[str, str]]]:
    settings = {"RATESVC_DATA_DIR": str(data_dir)}
    with serve_process(settings, log_path, ready_path="/v1/ready") as running:
        yield running.base, _store_urls(log_path)


def _store_urls(log_path: Path) -> dict[str, str]:
    for line in log_path.read_text().splitlines():
        if '"stores_connected"' in line:
            record = json.loads(line)
            return {"redis": record["redis"], "postgres": record["postgres"]}
    raise AssertionError("no stores_connected line")


def test_serve_keeps_data_and_stops_cleanly(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    with running_serve(data_dir, tmp_path / "first.log") as (base, urls):
        assert httpx.get(f"{base}/v1/health").json() == {"status": "ok"}
        Redis.from_url(urls["redis"]).set("kept", "yes")

        async def write_row() -> None:
            conn = await asyncpg.connect(urls["postgres"])
            await conn.execute("CREATE TABLE IF NOT EXISTS kept (v text)")
            await conn.execute("INSERT INTO kept VALUES ('yes')")
            await conn.close()

        import asyncio

        asyncio.run(write_row())
        Redis.from_url(urls["redis"]).bgrewriteaof()

    # SIGTERM to the group stopped everything the service started.
    assert processes_mentioning(str(data_dir)) == []

    with running_serve(data_dir, tmp_path / "second.log") as (_base, urls):
        assert Redis.from_url(urls["redis"]).get("kept") == b"yes"

        async def read_row() -> str:
            conn = await asyncpg.connect(urls["postgres"])
            value: str = await conn.fetchval("SELECT v FROM kept")
            await conn.close()
            return value

        import asyncio

        assert asyncio.run(read_row()) == "yes"
    assert processes_mentioning(str(data_dir)) == []
