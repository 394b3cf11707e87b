"""Memory of the rate limiter's client table at its cap, and the cost of a client key.

Feeds one window of the limiter with twice ``--clients`` distinct IPv4
addresses (so the table fills to its cap and the rest share the overflow
bucket) and reports the traced memory per counted client; then times
``client_key`` for a known address (the cache) and for fresh IPv4 and IPv6
ones (the parse).

    .venv/bin/python bench/ratelimit_table.py
"""

from __future__ import annotations

import argparse
import time
import timeit
import tracemalloc
from typing import Any

from ratesvc.ratelimit.client import address_key, client_key
from ratesvc.ratelimit.limiter import RateLimiter


def table_memory(clients: int) -> None:
    limiter = RateLimiter(1500, 60, 0.1, max_clients=clients)
    now = time.time()
    tracemalloc.start()
    for n in range(2 * clients):
        limiter.hit(f"10.{n >> 16 & 255}.{n >> 8 & 255}.{n & 255}", now)
    used, _peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    print(
        f"{2 * clients:,} addresses in one window, cap {clients:,}: {limiter.overflowed:,} shared"
        f" the overflow bucket; table {used / 1e6:.1f} MB, {used / (clients + 1):.0f} B per client"
    )


def key_costs(rounds: int) -> None:
    known: Any = {"client": ("192.0.2.1", 1), "headers": []}
    client_key(known, trust_proxy=False)
    per_call_us = timeit.timeit(lambda: client_key(known, trust_proxy=False), number=rounds)
    print(f"client_key, known address (cached):  {per_call_us / rounds * 1e6:.2f} µs")
    for label, template in (("IPv4", "10.{}.{}.1"), ("IPv6", "2001:db8:{:x}:{:x}::1")):
        addresses = [template.format(n >> 8, n & 255) for n in range(rounds)]
        started = time.perf_counter()
        for address in addresses:
            address_key.__wrapped__(address)
        took = time.perf_counter() - started
        print(f"address_key, fresh {label} (parsed):    {took / rounds * 1e6:.2f} µs")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--clients", type=int, default=100_000, help="the cap")
    parser.add_argument("--rounds", type=int, default=50_000)
    args = parser.parse_args()
    table_memory(args.clients)
    key_costs(args.rounds)


if __name__ == "__main__":
    main()
