"""``ratesvc serve`` as a child process, waited on until it answers.

What the end-to-end tests, the benchmarks and the load test share: the
service started the way an operator starts it, in its own process group, its
output in a log file, stopped with SIGTERM to the group (SIGKILL if it hangs).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from ratesvc.embedded import free_port


class ServeFailedError(RuntimeError):
    """The service exited or never answered; the message ends with its log."""


@dataclass(frozen=True)
class RunningServe:
    process: subprocess.Popen[bytes]
    base: str
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text()


def _environment(overrides: Mapping[str, str], port: int) -> dict[str, str]:
    # The caller's own RATESVC_* settings stay out: only what it passes applies.
    inherited = {k: v for k, v in os.environ.items() if not k.startswith("RATESVC_")}
    return {**inherited, "RATESVC_PORT": str(port), **overrides}


@contextmanager
def serve_process(
    settings: Mapping[str, str],
    log_path: Path,
    *,
    ready_path: str = "/v1/health",
    timeout_s: float = 60.0,
    command_prefix: Sequence[str] = (),
    stop_timeout_s: float = 30.0,
    cwd: Path | None = None,
) -> Iterator[RunningServe]:
    """Start ``ratesvc serve`` with ``settings`` (RATESVC_* variables) on a free port.

    Yields once ``GET ready_path`` answers 200.  ``command_prefix`` wraps the
    command (``taskset -c 0`` pins it and every child it starts); ``cwd`` is
    where it runs (where the default ``RATESVC_DATA_DIR``, ``.ratesvc``, is).
    """
    port = free_port()
    command = [*command_prefix, sys.executable, "-m", "ratesvc", "serve"]
    with log_path.open("w") as log_file:
        process = subprocess.Popen(
            command,
            env=_environment(settings, port),
            cwd=cwd,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own group, as a shell job would be
        )
    running = RunningServe(process, f"http://127.0.0.1:{port}", log_path)
    try:
        _wait_ready(running, ready_path, timeout_s)
        yield running
    finally:
        _stop(process, stop_timeout_s)


def _wait_ready(running: RunningServe, ready_path: str, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        if running.process.poll() is not None:
            raise ServeFailedError(f"ratesvc serve exited:\n{running.log()[-4000:]}")
        try:
            if httpx.get(running.base + ready_path, timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            raise ServeFailedError(f"{ready_path} not answering:\n{running.log()[-4000:]}")
        time.sleep(0.1)


def _stop(process: subprocess.Popen[bytes], timeout_s: float) -> None:
    if process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
