"""Run ratesvc with its simulators, load it with locust headless, draw the charts.

    .venv/bin/python loadtest/run.py                        # 1000 users, +200/s, 2 minutes
    .venv/bin/python loadtest/run.py -u 300 -r 50 -t 60s    # lighter
    .venv/bin/python loadtest/run.py --quick                # CI smoke: 20 users for 5 s
    .venv/bin/python loadtest/run.py --publish docs/perf    # also copy charts and summary there

``ratesvc serve`` starts here with ``RATESVC_SIMULATE=1`` and a fresh data
directory, so it brings its own embedded Redis and PostgreSQL and the
Binance, CoinGecko and Polygon simulators.  Two settings differ from the
defaults, both because every locust user comes from 127.0.0.1: the rate
limit is raised out of reach (it stays on and is counted), and the Polygon
call budget is raised to 600 a minute (the simulator has no plan to protect;
with 5 a minute the first minute of charts would be mostly 503s by design).
On a machine with two or more cores ratesvc and everything it starts run on
core 0 and locust on core 1.

Locust writes its CSV files (``--csv-full-history``) under
``loadtest/results/<time>/``; from the history this script draws
``requests.png`` (requests/s and failures/s), ``latency.png`` (p50, p95 and
p99 over time) and ``failures.png`` (failures/s per endpoint), and prints the
per-endpoint summary as a Markdown table (also saved as ``summary.md``).
"""

from __future__ import annotations

import argparse
import csv
import os
import shutil
import subprocess
import sys
import tempfile
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import support_path  # noqa: F401  (puts tests/ on sys.path for support.*)

from support.serve_process import ServeFailedError, serve_process

HERE = Path(__file__).resolve().parent
CORES = sorted(os.sched_getaffinity(0))
"""The cores this script may use (a container may get other numbers than 0 and 1)."""
SERVER_CORE = CORES[0]
LOAD_CORE = CORES[-1]


def _two_cores() -> bool:
    return len(CORES) > 1


@contextmanager
def ratesvc(workdir: Path) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    environment = {
        "RATESVC_DATA_DIR": str(workdir / "data"),
        "RATESVC_WORKERS": "1",
        "RATESVC_SIMULATE": "1",
        "RATESVC_RATE_LIMIT": "1000000000/minute",
        "RATESVC_POLYGON_CALLS_PER_MINUTE": "600",
    }
    # The service and everything it starts stay on the server core.
    pin = ["taskset", "-c", str(SERVER_CORE)] if _two_cores() and shutil.which("taskset") else []
    try:
        with serve_process(
            environment,
            workdir / "serve.log",
            ready_path="/v1/courses",
            timeout_s=90,
            command_prefix=pin,
        ) as running:
            yield running.process, running.base
    except ServeFailedError as exc:
        raise SystemExit(str(exc)) from None


def run_locust(base: str, users: int, rate: float, duration: str, prefix: Path) -> None:
    locust = shutil.which("locust") or str(Path(sys.executable).with_name("locust"))
    command = [
        locust, "-f", str(HERE / "locustfile.py"), "--headless", "--host", base,
        "-u", str(users), "-r", str(rate), "-t", duration, "--stop-timeout", "5",
        "--csv", str(prefix), "--csv-full-history", "--only-summary", "--loglevel", "WARNING",
    ]  # fmt: skip
    process = subprocess.Popen(command)
    if _two_cores():
        os.sched_setaffinity(process.pid, {LOAD_CORE})
    # Locust exits 1 when any request failed; the charts and the summary say how many.
    process.wait()


def _number(value: str) -> float:
    try:
        return float(value)
    except ValueError:
        return 0.0


def draw(prefix: Path, out: Path, title: str) -> list[Path]:
    import matplotlib as mpl  # noqa: PLC0415 - only needed here

    mpl.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    with Path(f"{prefix}_stats_history.csv").open() as history:
        rows = list(csv.DictReader(history))
    if not rows:
        return []
    start = int(rows[0]["Timestamp"])
    total = [r for r in rows if r["Name"] == "Aggregated"]
    t = [int(r["Timestamp"]) - start for r in total]
    users = [_number(r["User Count"]) for r in total]
    charts = []

    fig, ax = plt.subplots(figsize=(9, 4))
    ax.plot(t, [_number(r["Requests/s"]) for r in total], label="requests/s")
    ax.plot(t, [_number(r["Failures/s"]) for r in total], label="failures/s", color="tab:red")
    ax.set_xlabel("seconds")
    ax.set_ylabel("per second")
    ax2 = ax.twinx()
    ax2.plot(t, users, label="users", color="tab:gray", linestyle=":")
    ax2.set_ylabel("users")
    ax.legend(loc="upper left")
    ax2.legend(loc="lower right")
    ax.set_title(f"Throughput - {title}")
    fig.tight_layout()
    charts.append(out / "requests.png")
    fig.savefig(charts[-1], dpi=80)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(9, 4))
    for column in ("50%", "95%", "99%"):
        ax.plot(t, [_number(r[column]) for r in total], label=f"p{column[:-1]}")
    ax.set_xlabel("seconds")
    ax.set_ylabel("response time, ms")
    ax.set_yscale("log")
    ax.legend(loc="upper left")
    ax.set_title(f"Response-time percentiles, all requests - {title}")
    fig.tight_layout()
    charts.append(out / "latency.png")
    fig.savefig(charts[-1], dpi=80)
    plt.close(fig)

    by_name: dict[str, list[tuple[int, float]]] = defaultdict(list)
    for r in rows:
        if r["Name"] != "Aggregated":
            by_name[r["Name"]].append((int(r["Timestamp"]) - start, _number(r["Failures/s"])))
    fig, ax = plt.subplots(figsize=(9, 4))
    for name, points in sorted(by_name.items()):
        ax.plot([p[0] for p in points], [p[1] for p in points], label=name)
    ax.set_xlabel("seconds")
    ax.set_ylabel("failures/s")
    ax.legend(loc="upper left", fontsize="small")
    ax.set_title(f"Failures per endpoint - {title}")
    fig.tight_layout()
    charts.append(out / "failures.png")
    fig.savefig(charts[-1], dpi=80)
    plt.close(fig)
    return charts


def summary(prefix: Path) -> str:
    with Path(f"{prefix}_stats.csv").open() as stats:
        rows = list(csv.DictReader(stats))
    lines = [
        "| endpoint | requests | failures | req/s | p50 ms | p95 ms | p99 ms | max ms |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        name = r["Name"] if r["Name"] != "Aggregated" else "**all**"
        lines.append(
            f"| {r['Type']} {name} | {int(_number(r['Request Count'])):,} | "
            f"{int(_number(r['Failure Count'])):,} | {_number(r['Requests/s']):,.0f} | "
            f"{r['50%']} | {r['95%']} | {r['99%']} | {_number(r['Max Response Time']):,.0f} |"
        )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-u", "--users", type=int, default=1000)
    parser.add_argument("-r", "--spawn-rate", type=float, default=200)
    parser.add_argument("-t", "--run-time", default="2m")
    parser.add_argument("--quick", action="store_true", help="20 users for 5 s: a CI smoke run")
    parser.add_argument("--publish", type=Path, help="copy the charts and summary.md here")
    args = parser.parse_args()
    if args.quick:
        args.users, args.spawn_rate, args.run_time = 20, 20, "5s"
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    out = HERE / "results" / stamp
    out.mkdir(parents=True)
    prefix = out / "locust"
    with (
        tempfile.TemporaryDirectory(prefix="ratesvc-loadtest-") as tmp,
        ratesvc(Path(tmp)) as (_process, base),
    ):
        run_locust(base, args.users, args.spawn_rate, args.run_time, prefix)
    title = f"{args.users} users, {len(CORES)} cores, {stamp[:8]}"
    charts = draw(prefix, out, title)
    table = summary(prefix)
    (out / "summary.md").write_text(table + "\n")
    print(f"\nlocust -u {args.users} -r {args.spawn_rate:g} -t {args.run_time} ({stamp})\n")
    print(table)
    print("\n" + "\n".join(str(c) for c in charts))
    if args.publish:
        args.publish.mkdir(parents=True, exist_ok=True)
        for path in [*charts, out / "summary.md"]:
            shutil.copy(path, args.publish / path.name)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
