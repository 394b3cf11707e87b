"""Two replicas and one `ratesvc simulate`, set up with the README's settings and nothing else."""

from __future__ import annotations

import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import httpx
import pytest

from ratesvc.config import Settings
from ratesvc.embedded import free_port
from support.serve_process import serve_process

pytestmark = pytest.mark.slow

README = Path(__file__).resolve().parents[2] / "README.md"
BARS = "/v1/stocks/aggs/AAPL/range/1/day/2024-01-02/2024-01-31"


def readme_replica_settings() -> dict[str, str]:
    """The ``RATESVC_*=...`` lines of the README's "Replicas without compose" block."""
    text = README.read_text()
    section = text[text.index("**Replicas without compose.**") :]
    block = section[section.index("```sh") : section.index("```", section.index("```sh") + 5)]
    settings = {}
    for line in block.splitlines():
        if match := re.match(r"^(RATESVC_\w+)=(\S+)", line):
            settings[match.group(1)] = match.group(2)
    assert "RATESVC_BINANCE_WS_URL" in settings, block
    return settings


def _free_pair() -> int:
    """A port P with P+1 free too (the simulators' HTTP and websocket ports)."""
    for _ in range(50):
        port = free_port()
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port + 1))
            except OSError:
                continue
        return port
    raise AssertionError("no two adjacent free ports")


@contextmanager
def _simulators(port: int, log_path: Path) -> Iterator[None]:
    with log_path.open("w") as log_file:
        process = subprocess.Popen(
            [sys.executable, "-m", "ratesvc", "simulate", "--port", str(port)],
            stdout=log_file, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while True:
            assert process.poll() is None, log_path.read_text()
            try:
                with socket.create_connection(("127.0.0.1", port + 1), 0.2):
                    break
            except OSError:
                assert time.monotonic() < deadline, log_path.read_text()
                time.sleep(0.05)
        yield
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_replicas_share_one_simulator_set_as_the_readme_says(
    tmp_path: Path, redis_url: str, database_url: str, settings: Settings
) -> None:
    # `settings` empties the shared stores first.
    documented = readme_replica_settings()
    sim_port = _free_pair()
    # The README's values, with this test's stores and free ports in place of the examples.
    environment = {
        key: value.replace("127.0.0.1:8100", f"127.0.0.1:{sim_port}").replace(
            "127.0.0.1:8101", f"127.0.0.1:{sim_port + 1}"
        )
        for key, value in documented.items()
        if key not in {"RATESVC_PORT", "RATESVC_DATA_DIR"}
    }
    environment["RATESVC_REDIS_URL"] = redis_url
    environment["RATESVC_DATABASE_URL"] = database_url
    with ExitStack() as stack:
        stack.enter_context(_simulators(sim_port, tmp_path / "simulate.log"))
        replicas = [
            stack.enter_context(
                serve_process(
                    {**environment, "RATESVC_DATA_DIR": str(tmp_path / f"replica{n}")},
                    tmp_path / f"replica{n}.log",
                    ready_path="/v1/courses",
                )
            )
            for n in (1, 2)
        ]
        for replica in replicas:
            # The first complete answer can come from CoinGecko, whose poll may land
            # before the Binance stream's first tick: wait for Binance, within a bound.
            _wait_for_binance(replica.base)
        ready = [httpx.get(r.base + "/v1/ready", timeout=10).json() for r in replicas]
        assert len({body["leases"]["exchanges"]["holder"] for body in ready}) == 1
        assert sorted(body["leases"]["exchanges"]["held_here"] for body in ready) == [False, True]
        first = httpx.get(replicas[0].base + BARS, timeout=30)
        assert first.status_code == 200, first.text
        assert httpx.get(replicas[1].base + BARS, timeout=30).headers["x-cache"] == "HIT"


def _wait_for_binance(base: str, timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        courses = httpx.get(base + "/v1/courses", timeout=10).json()
        if courses.get("exchanger") == "binance":
            return
        assert time.monotonic() < deadline, courses
        time.sleep(0.05)
