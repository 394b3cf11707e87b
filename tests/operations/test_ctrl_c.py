"""Ctrl-C on `make run` / `make demo`: the terminal sends SIGINT to the whole process group.

Only ratesvc may act on it: it stops the app first, then the embedded stores
and the simulators it started, so nothing logs a store WARNING or a traceback.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from support.processes import processes_mentioning
from support.serve_process import serve_process

pytestmark = pytest.mark.slow


def _complaints(log: str) -> list[str]:
    """Log lines at WARNING or above, and any traceback text."""
    found = []
    for line in log.splitlines():
        if "Traceback" in line or "CancelledError" in line or "KeyboardInterrupt" in line:
            found.append(line)
            continue
        if line.startswith("{"):
            level = json.loads(line).get("level", "")
            if level in {"warning", "error", "critical"}:
                found.append(line)
    return found


@pytest.mark.parametrize("workers", ["1", "2"])
def test_sigint_to_the_process_group_stops_everything_in_order(
    tmp_path: Path, workers: str
) -> None:
    # `make demo`: embedded stores as with `make run`, plus the simulators (no internet here).
    data_dir = tmp_path / "data"
    environment = {
        "RATESVC_DATA_DIR": str(data_dir),
        "RATESVC_SIMULATE": "1",
        "RATESVC_WORKERS": workers,
    }
    log_path = tmp_path / "serve.log"
    with serve_process(environment, log_path, ready_path="/v1/ready") as running:
        before = len(running.log())
        os.killpg(running.process.pid, signal.SIGINT)  # what Ctrl-C in the terminal does
        exit_code = running.process.wait(timeout=60)
    log = log_path.read_text()
    assert exit_code == 0, log[-4000:]
    assert _complaints(log[before:]) == [], log[-4000:]
    events = [json.loads(line)["event"] for line in log.splitlines() if line.startswith("{")]
    # The app stopped before the stores it uses.
    assert events.index("app_stopped") < events.index("embedded_postgres_stopped")
    assert events.index("app_stopped") < events.index("embedded_redis_stopped")
    assert processes_mentioning(str(data_dir)) == []


def test_sigint_stops_a_standalone_simulator_without_a_traceback(tmp_path: Path) -> None:
    ready = tmp_path / "ready.json"
    log_path = tmp_path / "simulate.log"
    command = [sys.executable, "-m", "ratesvc", "simulate", "--port", "0",
               "--ready-file", str(ready)]  # fmt: skip
    with log_path.open("w") as log_file:
        process = subprocess.Popen(
            command, stdout=log_file, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        deadline = time.monotonic() + 30
        while not ready.exists():
            assert process.poll() is None, log_path.read_text()
            assert time.monotonic() < deadline, log_path.read_text()
            time.sleep(0.05)
        os.killpg(process.pid, signal.SIGINT)
        exit_code = process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    log = log_path.read_text()
    assert exit_code == 0, log
    assert _complaints(log) == [], log
