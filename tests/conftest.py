"""Fixtures: real Redis and PostgreSQL servers for the whole session, clean per test.

The servers are the same embedded ones ``ratesvc serve`` starts, or the ones
named by RATESVC_TEST_REDIS_URL / RATESVC_TEST_DATABASE_URL.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest
from redis.asyncio import Redis

from ratesvc.config import Settings, load_settings
from ratesvc.embedded import EmbeddedPostgres, EmbeddedRedis
from ratesvc.log import configure_logging

configure_logging("DEBUG", json=True)


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    """Keep this session's temporary directories out of ``/tmp/pytest-of-<user>``.

    pgserver runs PostgreSQL as an unprivileged user and opens every directory
    above its data directory to that user.  Each pytest session that starts on
    the machine closes ``/tmp/pytest-of-<user>`` again (mode 0700), and a
    PostgreSQL whose data lives below it then fails mid-run ("PANIC: could not
    open file .../global/pg_control: Permission denied").  A directory of this
    session's own is touched by no other session.
    """
    if config.option.basetemp is None:
        own = tempfile.mkdtemp(prefix="ratesvc-pytest-")
        config.option.basetemp = own
        # Removed at the end, failed or not (a database is tens of MB; the
        # failure report carries the logs): nothing piles up in /tmp.
        config.add_cleanup(lambda: shutil.rmtree(own, ignore_errors=True))


def _one_server_per_session(variable: str) -> str | None:
    """The server named by ``variable``, refused under pytest-xdist.

    Workers empty the stores between their tests; two workers on one server
    would empty each other's.  Without the variable each worker starts its own.
    """
    url = os.environ.get(variable)
    if url and os.environ.get("PYTEST_XDIST_WORKER"):
        raise pytest.UsageError(f"{variable} is one server for every worker: run without -n")
    return url


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if url := _one_server_per_session("RATESVC_TEST_REDIS_URL"):
        yield url
        return
    server = EmbeddedRedis(tmp_path_factory.mktemp("redis"), persistent=False).start()
    yield server.url
    server.stop()


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if url := _one_server_per_session("RATESVC_TEST_DATABASE_URL"):
        yield url
        return
    server = EmbeddedPostgres(Path(tmp_path_factory.mktemp("pg")) / "data").start()
    yield server.url
    server.stop()


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_url)
    await client.flushdb()
    yield client
    await client.aclose()


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[asyncpg.Connection]:
    """A connection to a database whose ratesvc tables are empty."""
    conn = await asyncpg.connect(database_url)
    tables = await conn.fetch(
        "SELECT tablename FROM pg_tables WHERE schemaname = 'public' "
        "AND tablename <> 'schema_migrations'"
    )
    if tables:
        names = ", ".join(f'"{t["tablename"]}"' for t in tables)
        await conn.execute(f"TRUNCATE {names}")
    yield conn
    await conn.close()


@pytest.fixture(scope="session")
def store_settings(redis_url: str, database_url: str) -> Settings:
    """Settings for an app on the test servers, for a module's shared app.

    The stores are emptied per test by ``redis`` and ``db`` (or ``settings``), not here.
    """
    return load_settings(
        {
            "RATESVC_REDIS_URL": redis_url,
            "RATESVC_DATABASE_URL": database_url,
            "RATESVC_SHUTDOWN_GRACE_S": "3",
        },
        env_file=None,
    )


@pytest.fixture
def settings(store_settings: Settings, redis: Redis, db: asyncpg.Connection) -> Settings:
    """Settings for an app on the test servers, with their stores emptied."""
    return store_settings
