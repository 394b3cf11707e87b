"""Run the simulators in a child process, as ``ratesvc serve`` does with RATESVC_SIMULATE=1."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType
from typing import Self

from ratesvc.embedded import die_with_parent


class SimulatorProcess:
    def __init__(self, work_dir: Path, *, seed: int = 1, timeout_s: float = 20.0) -> None:
        self.work_dir = work_dir
        self.seed = seed
        self.timeout_s = timeout_s
        self.urls: dict[str, str] = {}
        self._process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Self:
        self.work_dir.mkdir(parents=True, exist_ok=True)
        ready = self.work_dir / "ready.json"
        ready.unlink(missing_ok=True)
        self._process = subprocess.Popen(  # noqa: S603 - our own module, fixed argv
            [sys.executable, "-m", "ratesvc", "simulate", "--port", "0",
             "--seed", str(self.seed), "--ready-file", str(ready)],
            stdin=subprocess.DEVNULL,
            # Out of the terminal's process group, as the embedded stores are: the
            # simulators keep answering until the app has stopped, then get SIGTERM.
            start_new_session=True,
            preexec_fn=die_with_parent,  # noqa: PLW1509 - before threads start
        )  # fmt: skip
        deadline = time.monotonic() + self.timeout_s
        while not ready.exists():
            if self._process.poll() is not None or time.monotonic() > deadline:
                self.__exit__(None, None, None)
                raise RuntimeError("simulators did not start")
            time.sleep(0.02)
        self.urls = json.loads(ready.read_text())
        return self

    def environment(self) -> dict[str, str]:
        return dict(self.urls)

    def __exit__(
        self,
        _exc_type: type[BaseException] | None,
        _exc: BaseException | None,
        _tb: TracebackType | None,
    ) -> None:
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
