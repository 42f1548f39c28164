"""Progress lines for long transfers: at most one a second, and one at the end."""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from typing import TextIO

MIB = 1024 * 1024


class ProgressMeter:
    """Counts bytes reported from any thread; prints ``label  done MiB  rate``."""

    def __init__(
        self,
        label: str,
        *,
        out: TextIO | None = None,
        every_seconds: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.label = label
        self.done = 0
        self._out = out or sys.stderr
        self._every = every_seconds
        self._clock = clock
        self._started = clock()
        self._last = self._started
        self._lock = threading.Lock()

    def __call__(self, delta: int) -> None:
        with self._lock:
            self.done += delta
            now = self._clock()
            if now - self._last >= self._every:
                self._last = now
                self._print(now)

    def finish(self) -> float:
        """Print the final line; returns the elapsed seconds."""
        with self._lock:
            now = self._clock()
            self._print(now)
            return now - self._started

    def _print(self, now: float) -> None:
        elapsed = max(now - self._started, 1e-9)
        print(
            f"{self.label}  {self.done / MIB:8.1f} MiB in {elapsed:6.1f} s  "
            f"{self.done / MIB / elapsed:7.1f} MiB/s",
            file=self._out,
            flush=True,
        )
