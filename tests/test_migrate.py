import asyncio

import asyncpg

from ratesvc.migrate import apply_migrations, available_migrations


async def test_migrations_apply_once(database_url: str) -> None:
    conn = await asyncpg.connect(database_url)
    try:
        await apply_migrations(conn)  # whatever earlier tests left, now fully migrated
        assert await apply_migrations(conn) == []
        versions = [r["version"] for r in await conn.fetch("SELECT version FROM schema_migrations")]
        assert sorted(versions) == [m.version for m in available_migrations()]
    finally:
        await conn.close()


async def test_concurrent_start_ups_apply_each_migration_once(database_url: str) -> None:
    admin = await asyncpg.connect(database_url)
    await admin.execute("DROP DATABASE IF EXISTS migrate_race")
    await admin.execute("CREATE DATABASE migrate_race")
    race_url = database_url.replace("/ratesvc?", "/migrate_race?")
    conns = [await asyncpg.connect(race_url) for _ in range(5)]
    try:
        results = await asyncio.gather(*(apply_migrations(c) for c in conns))
        applied = [v for result in results for v in result]
        assert sorted(applied) == [m.version for m in available_migrations()]
        count = await conns[0].fetchval("SELECT count(*) FROM schema_migrations")
        assert count == len(available_migrations())
    finally:
        for conn in conns:
            await conn.close()
        await admin.execute("DROP DATABASE migrate_race")
        await admin.close()
