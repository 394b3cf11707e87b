"""The environment of a `ratesvc serve` child process that uses the tests' stores."""

from __future__ import annotations

from pathlib import Path

from ratesvc.config import Settings


def store_environment(settings: Settings, data_dir: Path) -> dict[str, str]:
    """RATESVC_* variables pointing a child process at the fixtures' Redis and PostgreSQL."""
    assert settings.redis_url is not None
    assert settings.database_url is not None
    return {
        "RATESVC_REDIS_URL": settings.redis_url,
        "RATESVC_DATABASE_URL": settings.database_url,
        "RATESVC_DATA_DIR": str(data_dir),
    }
