"""`make run`, then `ratesvc purge AAPL` from the same directory: it finds the embedded Redis."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from ratesvc.embedded import free_port
from support.serve_process import serve_process

pytestmark = pytest.mark.slow

BARS = "/v1/stocks/aggs/AAPL/range/1/day/2024-01-02/2024-01-31"


def _purge(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    # As a user types it: none of the service's RATESVC_* settings in the environment.
    environment = {k: v for k, v in os.environ.items() if not k.startswith("RATESVC_")}
    return subprocess.run(
        [sys.executable, "-m", "ratesvc", "purge", *args],
        cwd=cwd, env=environment, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


def test_purge_finds_the_embedded_redis_of_the_running_service(tmp_path: Path) -> None:
    # The default RATESVC_DATA_DIR (.ratesvc in the working directory); the
    # simulated Polygon stands in for the real one, which this machine cannot reach.
    with serve_process({"RATESVC_SIMULATE": "1"}, tmp_path / "serve.log", cwd=tmp_path) as running:
        first = httpx.get(running.base + BARS, timeout=30)
        assert first.status_code == 200, first.text
        assert httpx.get(running.base + BARS, timeout=30).headers["x-cache"] == "HIT"

        purged = _purge(tmp_path, "AAPL")
        assert purged.returncode == 0, purged.stderr
        assert "AAPL" in purged.stdout, purged.stdout
        assert httpx.get(running.base + BARS, timeout=30).headers["x-cache"] == "MISS"

    # Stopped: nothing announces a Redis any more, and purge says what to do.
    assert not (tmp_path / ".ratesvc" / "redis" / "url").exists()
    stopped = _purge(tmp_path, "AAPL")
    assert stopped.returncode == 2
    assert "RATESVC_REDIS_URL" in stopped.stderr
    assert "Traceback" not in stopped.stderr


def test_purge_says_so_when_the_announced_redis_is_gone(tmp_path: Path) -> None:
    # What a service killed with SIGKILL leaves: the URL of a Redis that stopped with it.
    announced = tmp_path / ".ratesvc" / "redis" / "url"
    announced.parent.mkdir(parents=True)
    announced.write_text(f"redis://127.0.0.1:{free_port()}/0\n")
    purged = _purge(tmp_path, "AAPL")
    assert purged.returncode == 1
    assert "is ratesvc running?" in purged.stderr
    assert "Traceback" not in purged.stderr
