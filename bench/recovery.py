"""Seconds to recover after upstream outages and after Redis lost its data, production settings.

Starts everything itself: an embedded Redis and PostgreSQL, the simulators
(``ratesvc simulate``) and ``ratesvc serve`` pointed at them with the default
reconnect and retry settings.  Each round:

1. Binance refuses every websocket handshake (and drops the open connection)
   for ``--outage-s`` seconds, then accepts again;
2. CoinGecko answers 500 for ``--outage-s`` seconds (and at least until one
   call failed), then 200 again.

After each outage it prints how long ``GET /v1/courses`` took to show prices
from that upstream received after its return, and how many connection
attempts (Binance) or calls (CoinGecko) the outage cost.

Then, with 999 events stored, Redis is killed, left down ``--redis-down-s``
seconds and restarted empty on its port: it prints how long after the restart
``GET /v1/stats/signup`` answered 999 again, and a cross rate read from
Redis's quotes (``?direction=BTC-RUB``) was answered again.

    .venv/bin/python bench/recovery.py                            # 2 rounds of 60 s outages
    .venv/bin/python bench/recovery.py --quick                    # one round of 5 s, for CI
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import support_path  # noqa: F401  (puts tests/ on sys.path for support.*)

from ratesvc.embedded import EmbeddedPostgres, EmbeddedRedis
from ratesvc_sim.process import SimulatorProcess
from support.serve_process import serve_process

POLL_S = 0.05


def _rows_after(source: str, moment: datetime) -> Callable[[httpx.Response], bool]:
    """Every row from ``source``, its direct quotes received after ``moment``.

    Rows with ``legs`` (Binance's RUB cross rates) carry the time of their
    oldest leg, CoinGecko's USD-RUB, polled every 30 s: they only need to come
    from ``source`` again.
    """

    def accept(response: httpx.Response) -> bool:
        if response.status_code != 200:
            return False
        rows = response.json()["courses"]
        direct = [row for row in rows if "legs" not in row]
        return (
            bool(direct)
            and all(row["source"] == source for row in rows)
            and all(datetime.fromisoformat(row["updated_at"]) > moment for row in direct)
        )

    return accept


def _wait(
    client: httpx.Client, path: str, accept: Callable[[httpx.Response], bool], timeout_s: float
) -> float:
    started = time.monotonic()
    while not accept(client.get(path)):
        if time.monotonic() - started > timeout_s:
            raise SystemExit(f"{path}: not answered as expected within {timeout_s} s")
        time.sleep(POLL_S)
    return time.monotonic() - started


def _control(client: httpx.Client, upstream: str, mode: str) -> None:
    client.post(f"/control/{upstream}/{mode}").raise_for_status()


def _log_events(log_path: Path, name: str, since: datetime) -> int:
    count = 0
    for line in log_path.read_text().splitlines():
        if not line.startswith("{"):
            continue
        entry: dict[str, Any] = json.loads(line)
        stamp = entry.get("timestamp")
        if entry.get("event") == name and stamp and datetime.fromisoformat(stamp) >= since:
            count += 1
    return count


def _binance_round(
    service: httpx.Client, control: httpx.Client, log_path: Path, outage_s: float
) -> tuple[float, int]:
    cut_at = datetime.now(UTC)
    _control(control, "binance", "refuse")
    _control(control, "binance", "drop")
    time.sleep(outage_s)
    back_at = datetime.now(UTC)
    _control(control, "binance", "normal")
    took = _wait(service, "/v1/courses", _rows_after("binance", back_at), 60)
    return took, _log_events(log_path, "ws_reconnecting", cut_at)


def _coingecko_round(
    control: httpx.Client, service: httpx.Client, outage_s: float
) -> tuple[float, int]:
    calls_before = control.get("/control/state").json()["coingecko"]["calls"]
    _control(control, "coingecko", "error")
    time.sleep(outage_s)
    # A short outage can fall between two polls (30 s apart); it has only begun
    # for the service once a call failed.
    while (calls := control.get("/control/state").json()["coingecko"]["calls"] - calls_before) == 0:
        time.sleep(POLL_S)
    back_at = datetime.now(UTC)
    _control(control, "coingecko", "normal")
    path = "/v1/courses?exchanger=coingecko"
    took = _wait(service, path, _rows_after("coingecko", back_at), 60)
    return took, calls


def _redis_round(
    service: httpx.Client, redis_server: EmbeddedRedis, down_s: float
) -> tuple[float, float]:
    signups = [
        {"user_id": n, "event_type": "signup", "timestamp": 1_700_000_000} for n in range(999)
    ]
    service.post("/v1/events", json=signups).raise_for_status()
    _wait(service, "/v1/stats/signup", _count_is(999), 30)
    port = redis_server.port
    redis_server.kill()
    time.sleep(down_s)
    redis_server.start(port=port)
    started = time.monotonic()
    _wait(service, "/v1/stats/signup", _count_is(999), 60)
    counts_s = time.monotonic() - started
    _wait(service, "/v1/courses?direction=BTC-RUB", _one_row, 60)
    return counts_s, time.monotonic() - started


def _count_is(expected: int) -> Callable[[httpx.Response], bool]:
    return lambda r: r.status_code == 200 and r.json()["count"] == expected


def _one_row(response: httpx.Response) -> bool:
    return response.status_code == 200 and len(response.json()["courses"]) == 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--outage-s", type=float, default=60.0)
    parser.add_argument("--redis-down-s", type=float, default=5.0)
    parser.add_argument("--quick", action="store_true", help="one round of 5 s outages (CI)")
    args = parser.parse_args()
    if args.quick:
        args.rounds, args.outage_s, args.redis_down_s = 1, 5.0, 1.0

    with tempfile.TemporaryDirectory(prefix="ratesvc-recovery-") as tmp, ExitStack() as stack:
        workdir = Path(tmp)
        redis_server = EmbeddedRedis(workdir / "redis", persistent=False).start()
        stack.callback(redis_server.stop)
        postgres = EmbeddedPostgres(workdir / "pg" / "data").start()
        stack.callback(postgres.stop)
        simulators = stack.enter_context(SimulatorProcess(workdir / "sim"))
        control_base = simulators.urls["RATESVC_BINANCE_REST_URL"].removesuffix("/binance")
        settings = {
            **simulators.environment(),
            "RATESVC_REDIS_URL": redis_server.url,
            "RATESVC_DATABASE_URL": postgres.url,
            "RATESVC_POLYGON_API_KEY": "simulated",
            "RATESVC_RATE_LIMIT": "1000000/minute",
        }
        log_path = workdir / "serve.log"
        running = stack.enter_context(serve_process(settings, log_path))
        service = stack.enter_context(httpx.Client(base_url=running.base, timeout=10))
        control = stack.enter_context(httpx.Client(base_url=control_base, timeout=10))
        _wait(service, "/v1/courses", _rows_after("binance", datetime(1970, 1, 1, tzinfo=UTC)), 60)

        binance, coingecko = [], []
        for round_no in range(1, args.rounds + 1):
            took, attempts = _binance_round(service, control, log_path, args.outage_s)
            binance.append(took)
            print(
                f"round {round_no}: Binance refused {args.outage_s:.0f} s -> back in {took:.2f} s"
                f" ({attempts} reconnect attempts, {attempts / (args.outage_s + took) * 300:.0f}"
                " per 5 min)",
                flush=True,
            )
            took, calls = _coingecko_round(control, service, args.outage_s)
            coingecko.append(took)
            print(
                f"round {round_no}: CoinGecko 500 for {args.outage_s:.0f} s -> back in {took:.2f} s"
                f" ({calls} calls during the outage)",
                flush=True,
            )
        counts_s, quotes_s = _redis_round(service, redis_server, args.redis_down_s)
        print(
            f"Redis down {args.redis_down_s:.0f} s, restarted empty -> counts right after"
            f" {counts_s:.2f} s, BTC-RUB answered after {quotes_s:.2f} s",
            flush=True,
        )
        print(
            f"seconds to return to Binance:   max {max(binance):.2f}, "
            f"median {statistics.median(binance):.2f}"
        )
        print(
            f"seconds to return to CoinGecko: max {max(coingecko):.2f}, "
            f"median {statistics.median(coingecko):.2f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
