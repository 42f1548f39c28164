"""CDC between two fresh region databases for integration tests: the wiring of
``switchyard.devenv.cdc_pair`` (shared with the benchmark), sources and sinks run in threads of
the test process, and what the sink reported collected for assertions."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import Any

import psycopg

from switchyard.devenv.cdc_pair import CdcWiring, sql
from switchyard.devenv.harness import Harness
from switchyard.domain.cdc import Gap
from switchyard.replication.sink import Applied, ChangeSink
from switchyard.replication.source import ChangeSource


@dataclass(frozen=True)
class CdcPair(CdcWiring):
    applied: list[Applied] = field(default_factory=list)
    gaps: list[Gap] = field(default_factory=list)

    def source(self, client_id: str = "test-cdc-source") -> ChangeSource:
        return super().source(client_id)

    def sink(self, client_id: str = "test-cdc-sink", **_: Any) -> ChangeSink:
        return super().sink(
            client_id,
            on_applied=self.applied.append,
            on_gap=lambda source, gap: self.gaps.append(gap),
        )

    def source_sql(self, query: str, params: Any = None) -> list[tuple[Any, ...]]:
        return sql(self.source_conninfo, query, params)

    def target_sql(self, query: str, params: Any = None) -> list[tuple[Any, ...]]:
        return sql(self.target_conninfo, query, params)

    def applied_row(self) -> dict[str, Any]:
        with psycopg.connect(self.target_conninfo) as conn:
            cur = conn.execute(
                "SELECT * FROM cdc_applied WHERE source_region = %s", (self.source_region,)
            )
            names = [d.name for d in cur.description or []]
            row = cur.fetchone()
        return dict(zip(names, row, strict=True)) if row else {}


@contextmanager
def cdc_pair(harness: Harness, bootstrap: str) -> Iterator[CdcPair]:
    wiring = CdcWiring.fresh(harness, "test")
    # KAFKA_BOOTSTRAP_SERVERS may point at a real cluster instead of the harness broker.
    pair = CdcPair(**{**asdict(wiring), "bootstrap": bootstrap})
    try:
        yield pair
    finally:
        wiring.retire(harness)


@contextmanager
def running(component: Any, name: str) -> Iterator[Callable[[], None]]:
    """Run ``component.run(stop)`` in a thread; yields a function that stops it (as a crash
    would: no flush beyond what ``run`` does on its own exit)."""
    stop = threading.Event()
    errors: list[BaseException] = []

    def target() -> None:
        try:
            component.run(stop.is_set)
        except BaseException as exc:  # surfaced to the test below
            errors.append(exc)

    thread = threading.Thread(target=target, name=name, daemon=True)
    thread.start()

    def halt() -> None:
        stop.set()
        thread.join(timeout=30)
        assert not thread.is_alive(), f"{name} did not stop"

    try:
        yield halt
    finally:
        halt()
    if errors:
        raise errors[0]


def wait_for(check: Callable[[], Any], *, timeout: float = 20.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.05)
