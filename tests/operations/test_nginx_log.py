"""deploy/nginx.conf logs the request as the client sent it, also when its error page answered.

nginx turns a request it answers with an ``error_page`` into an internal GET
of the error page, so ``$request_method`` would log a failed POST as GET.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from ratesvc.embedded import free_port

DEPLOY_CONF = Path(__file__).resolve().parents[2] / "deploy" / "nginx.conf"
NGINX = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)

pytestmark = pytest.mark.skipif(NGINX is None, reason="nginx not installed")


@pytest.fixture
def nginx_without_replicas(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """deploy/nginx.conf on a free port, its only replica a port where nothing listens."""
    assert NGINX is not None
    access_log = tmp_path / "access.log"
    port = free_port()
    conf = (
        DEPLOY_CONF.read_text()
        .replace("server replica:8000", f"server 127.0.0.1:{free_port()}")
        .replace("listen 8080;", f"listen 127.0.0.1:{port};")
        .replace("access_log /dev/stdout json;", f"access_log {access_log} json;")
        .replace("error_log /dev/stderr warn;", f"error_log {tmp_path / 'error.log'} warn;")
    )
    (tmp_path / "nginx.conf").write_text(conf)
    process = subprocess.Popen(
        [NGINX, "-p", str(tmp_path), "-c", str(tmp_path / "nginx.conf"),
         "-e", str(tmp_path / "error.log"), "-g", f"pid {tmp_path / 'nginx.pid'}; daemon off;"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 10
        while True:
            assert process.poll() is None, (tmp_path / "error.log").read_text()
            try:
                httpx.get(base + "/v1/health", timeout=1)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline
                time.sleep(0.05)
        yield base, access_log
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_a_post_answered_by_the_error_page_is_logged_as_the_post(
    nginx_without_replicas: tuple[str, Path],
) -> None:
    base, access_log = nginx_without_replicas
    reply = httpx.post(base + "/v1/events?source=test", json={"event_type": "x"}, timeout=10)
    assert reply.status_code == 502
    assert reply.json()["error"] == "bad_gateway"
    deadline = time.monotonic() + 5
    while not access_log.read_text().strip():
        assert time.monotonic() < deadline
        time.sleep(0.05)
    records = [json.loads(line) for line in access_log.read_text().splitlines()]
    posted = [r for r in records if "/v1/events" in json.dumps(r)]
    assert len(posted) == 1, records
    assert posted[0]["status"] == 502
    assert posted[0]["request"] == "POST /v1/events?source=test HTTP/1.1"
    assert "method" not in posted[0]  # $request_method would say GET here
