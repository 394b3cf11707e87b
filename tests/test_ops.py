"""Health, readiness, metrics, docs and the framework's own errors, on one app for the module."""

from collections.abc import AsyncIterator

import httpx
import pytest

from ratesvc.app import create_app
from ratesvc.config import Settings
from support.apps import app_client


@pytest.fixture(scope="module")
async def client(store_settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async with app_client(create_app(store_settings)) as client:
        yield client


async def test_health_ready_metrics_and_docs(client: httpx.AsyncClient) -> None:
    health = await client.get("/v1/health")
    assert health.status_code == 200
    assert health.json() == {"status": "ok"}

    ready = await client.get("/v1/ready")
    assert ready.status_code == 200
    body = ready.json()
    assert body["redis"] == "ok"
    assert body["postgres"] == "ok"
    assert body["tasks"]["drainer"]["status"] == "running"

    metrics = await client.get("/metrics")
    assert metrics.status_code == 200
    assert "ratesvc_queue_depth" in metrics.text
    assert 'ratesvc_task_restarts_total{task="drainer"} 0.0' in metrics.text
    assert "ratesvc_requests_total" in metrics.text

    docs = await client.get("/docs")
    assert docs.status_code == 200
    schema = await client.get("/docs/openapi.json")
    assert schema.json()["info"]["title"] == "ratesvc"


async def test_framework_errors_are_json(client: httpx.AsyncClient) -> None:
    missing = await client.get("/v1/nothing-here")
    assert missing.status_code == 404
    assert missing.headers["content-type"].startswith("application/json")
    assert missing.json()["error"] == "not_found"

    wrong_method = await client.delete("/v1/health")
    assert wrong_method.status_code == 405
    assert wrong_method.json()["error"] == "method_not_allowed"

    long_path = await client.get("/v1/" + "a" * 20_000)
    assert 400 <= long_path.status_code < 500
    assert long_path.headers["content-type"].startswith("application/json")
    assert "error" in long_path.json()
