"""Where the CPU goes: a py-spy profile (``--format raw``) grouped by component.

    .venv/bin/python bench/http_bench.py --rounds 1 --only "GET /v1/courses" --profile /tmp/courses.txt
    .venv/bin/python bench/profile_summary.py /tmp/courses.txt

Each sample is charged to the component of its innermost Python frame (the
code that was running): uvicorn and the event loop, Litestar, ratesvc's
request metrics, its rate limiter, the Redis client, the route's own code,
logging.  Then the functions with the most samples.
"""

from __future__ import annotations

import argparse
import re
from collections import Counter
from pathlib import Path

COMPONENTS = (
    ("uvicorn, event loop (HTTP parsing, socket I/O)", ("uvicorn/", "asyncio/", "uvloop", "httptools")),
    ("Litestar (app, router, exception layer)", ("litestar/",)),
    ("request metrics (ratesvc/api/metrics.py)", ("ratesvc/api/metrics.py",)),
    ("rate limiter (ratesvc/ratelimit)", ("ratesvc/ratelimit/",)),
    ("request size limits (ratesvc/api/limits.py)", ("ratesvc/api/limits.py",)),
    ("Redis client", ("ratesvc/pipelined.py", "redis/", "hiredis")),
    ("logging", ("logging/", "structlog/")),
    ("route code (ratesvc/courses, stocks, events)", ("ratesvc/courses/", "ratesvc/stocks/", "ratesvc/events/")),
)  # fmt: skip
FRAME = re.compile(r"^(?P<function>.*) \((?P<file>[^()]*?)(?::\d+)?\)$")


def component(frame: str) -> str:
    match = FRAME.match(frame)
    where = match.group("file") if match else frame
    for name, markers in COMPONENTS:
        if any(marker in where for marker in markers):
            return name
    return "other"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("profile", type=Path, help="py-spy record --format raw output")
    parser.add_argument("--top", type=int, default=12)
    args = parser.parse_args()
    by_component: Counter[str] = Counter()
    by_function: Counter[str] = Counter()
    total = 0
    for line in args.profile.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack:
            continue
        samples = int(count)
        innermost = stack.split(";")[-1]
        total += samples
        by_component[component(innermost)] += samples
        match = FRAME.match(innermost)
        by_function[
            f"{match.group('function')} ({match.group('file')})" if match else innermost
        ] += samples
    if not total:
        print("no samples")
        return 1
    print(f"{total} samples\n\nby component (innermost frame):")
    for name, samples in by_component.most_common():
        print(f"  {100 * samples / total:5.1f}%  {name}")
    print(f"\ntop {args.top} functions (self time):")
    for name, samples in by_function.most_common(args.top):
        print(f"  {100 * samples / total:5.1f}%  {name}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
