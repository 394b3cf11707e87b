"""Another test session starting on the same machine leaves this one's servers working."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import asyncpg


async def test_a_pytest_session_starting_meanwhile_leaves_postgres_working(
    database_url: str, tmp_path: Path
) -> None:
    # A plain pytest session elsewhere, as another checkout's `make test` would start:
    # creating its tmp_path closes /tmp/pytest-of-<user> to everyone but its owner.
    other = tmp_path / "other-session"
    other.mkdir()
    (other / "pytest.ini").write_text("[pytest]\n")
    (other / "test_other.py").write_text("def test_uses_tmp_path(tmp_path):\n    pass\n")
    session = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(other),
        cwd=other, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    output, _ = await asyncio.wait_for(session.communicate(), 120)
    assert session.returncode == 0, output.decode()

    # PostgreSQL (running as pgserver's own user) still reaches its data directory.
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute("DROP DATABASE IF EXISTS isolation_probe")
        await conn.execute("CREATE DATABASE isolation_probe")
        await conn.execute("DROP DATABASE isolation_probe")
    finally:
        await conn.close()
