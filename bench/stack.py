"""Small helpers the benchmarks that drive a private harness share."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from switchyard.devenv.dns import record_answer
from switchyard.devenv.harness import Harness


def knot_answer(h: Harness) -> str | None:
    """What Knot answers for the GSLB record now (the first address), None for nothing."""
    answer = record_answer(h.knot.port)
    return answer[0] if answer else None


def pid_of(h: Harness, name: str) -> int:
    return int(Path(h.layout.pidfile(name)).read_text().split()[0])


def wait(what: str, check: Callable[[], object], timeout: float) -> None:
    """Poll ``check`` every 5 ms until it is true; exit the benchmark after ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.005)
    raise SystemExit(f"bench: timed out waiting for {what}")


def percentile(values: list[float], q: float) -> float:
    """The value at fraction ``q`` of the sorted values (nearest rank); NaN for none."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]
