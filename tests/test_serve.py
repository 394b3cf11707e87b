"""`ratesvc serve` as a user runs it: embedded stores, data kept, clean stop on SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import asyncpg
import httpx
import pytest
from redis import Redis

from ratesvc.embedded import free_port

pytestmark = pytest.mark.slow


def _processes_mentioning(text: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if text.encode() in cmdline:
            found.append(int(entry.name))
    return found


@contextmanager
def running_serve(data_dir: Path, log_path: Path) -> Iterator[tuple[str, dict[str, str]]]:
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("RATESVC_")},
        "RATESVC_DATA_DIR": str(data_dir),
        "RATESVC_PORT": str(port),
    }
    with log_path.open("w") as log_file:
        process = subprocess.Popen(
            [sys.executable, "-m", "ratesvc", "serve"],
            env=env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, as a shell job would be
        )
        try:
            base = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + 60
            while True:
                assert process.poll() is None, log_path.read_text()
                try:
                    if httpx.get(f"{base}/v1/ready", timeout=1).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert time.monotonic() < deadline, log_path.read_text()
                time.sleep(0.1)
            yield base, _store_urls(log_path)
        finally:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=20)


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
    assert _processes_mentioning(str(data_dir)) == []

    with running_serve(data_dir, tmp_path / "second.log") as (_base, urls):
        assert Redis.from_url(urls["redis"]).get("kept") == b"yes"

        async def read_row() -> str:
            conn = await asyncpg.connect(urls["postgres"])
            value: str = await conn.fetchval("SELECT v FROM kept")
            await conn.close()
            return value

        import asyncio

        assert asyncio.run(read_row()) == "yes"
    assert _processes_mentioning(str(data_dir)) == []
