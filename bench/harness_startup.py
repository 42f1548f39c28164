"""Benchmark: how long the local harness takes to start, and what each server costs in memory.

Runs a private copy of the whole stack (its own folder and port block, so a running
``make up`` is untouched) through three phases and prints a table per phase:

1. cold start: empty data folders (initdb, zone files, Vault seeding included);
2. warm restart: ``down`` then ``up`` on the same data;
3. no-op: ``up`` while everything runs.

Then resident memory per server (the whole process session, e.g. PostgreSQL's workers) and
the time ``down`` takes. Figures only; nothing is asserted.

    .venv/bin/python bench/harness_startup.py [--port-base 28400] [--rounds 3]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from switchyard.devenv.harness import Harness
from switchyard.devenv.layout import DevLayout, DevPorts


def timed_up(h: Harness) -> tuple[float, dict[str, float]]:
    t0 = time.perf_counter()
    results = h.up()
    return time.perf_counter() - t0, {r.name: r.seconds for r in results}


def timed_down(h: Harness) -> float:
    t0 = time.perf_counter()
    h.down()
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port-base", type=int, default=28400)
    parser.add_argument("--rounds", type=int, default=3, help="warm restarts to measure")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="switchyard-bench-") as tmp:
        Path(tmp).chmod(0o755)  # servers run as their own users and must reach their folders
        h = Harness(DevLayout(root=Path(tmp), ports=DevPorts(args.port_base)))
        try:
            cold_total, cold = timed_up(h)
            noop_total, _ = timed_up(h)
            memory = {s.name: s.rss_bytes or 0 for s in h.status() if s.kind == "server"}
            downs, warm_totals = [], []
            warm: dict[str, list[float]] = {}
            for _ in range(args.rounds):
                downs.append(timed_down(h))
                total, per = timed_up(h)
                warm_totals.append(total)
                for name, seconds in per.items():
                    warm.setdefault(name, []).append(seconds)
        finally:
            h.down()

    print(f"{'server':<14} {'cold start s':>12} {'warm start s':>13} {'RSS MiB':>8}")
    for name in cold:
        print(
            f"{name:<14} {cold[name]:>12.2f} {statistics.median(warm[name]):>13.2f} "
            f"{memory[name] / 2**20:>8.0f}"
        )
    print(
        f"{'all (parallel)':<14} {cold_total:>12.2f} {statistics.median(warm_totals):>13.2f} "
        f"{sum(memory.values()) / 2**20:>8.0f}"
    )
    print(f"\nno-op up while running: {noop_total * 1000:.0f} ms")
    print(f"down (all servers): median {statistics.median(downs):.2f} s over {args.rounds} rounds")
    print("per-server start times overlap: servers are spawned together, then awaited in order")


if __name__ == "__main__":
    main()
