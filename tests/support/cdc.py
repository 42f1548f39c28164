"""Two region databases joined by CDC through the harness broker, for integration tests and
benchmarks: fresh databases (one on each region's PostgreSQL), unique region names (so slots
never collide), unique topics, and sources and sinks run in threads of the test process."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import psycopg

from switchyard.adapters.events_kafka import KafkaPublisher, KafkaSubscriber, KafkaTopics
from switchyard.db import migrate
from switchyard.devenv.harness import Harness
from switchyard.domain.secrets import Secret
from switchyard.replication.catalog import slot_name
from switchyard.replication.sink import Applied, ChangeSink, SinkSettings
from switchyard.replication.source import ChangeSource, SourceSettings


@dataclass
class CdcPair:
    bootstrap: str
    source_region: str
    target_region: str
    source_conninfo: str
    target_conninfo: str
    topic: str
    dead_letter_topic: str
    group: str
    applied: list[Applied] = field(default_factory=list)
    gaps: list[Any] = field(default_factory=list)

    def source(self, **overrides: Any) -> ChangeSource:
        settings = SourceSettings(
            region=self.source_region,
            conninfo=Secret(self.source_conninfo),
            database="cdc",
            topic=self.topic,
            **overrides,
        )
        return ChangeSource(
            settings,
            lambda: KafkaPublisher(self.bootstrap, client_id="test-cdc-source", linger_ms=1),
            KafkaTopics(self.bootstrap),
        )

    def sink(self, **overrides: Any) -> ChangeSink:
        settings = SinkSettings(
            region=self.target_region,
            conninfo=Secret(self.target_conninfo),
            topics={self.source_region: self.topic},
            dead_letter_topic=self.dead_letter_topic,
            group_id=self.group,
            **overrides,
        )
        return ChangeSink(
            settings,
            lambda: KafkaSubscriber(self.bootstrap, group_id=self.group, client_id="test-sink"),
            lambda: KafkaPublisher(self.bootstrap, client_id="test-cdc-dlq"),
            KafkaTopics(self.bootstrap),
            on_applied=self.applied.append,
            on_gap=lambda source, gap: self.gaps.append(gap),
        )

    def source_sql(self, sql: str, params: Any = None) -> list[tuple[Any, ...]]:
        return _run(self.source_conninfo, sql, params)

    def target_sql(self, sql: str, params: Any = None) -> list[tuple[Any, ...]]:
        return _run(self.target_conninfo, sql, params)

    def applied_row(self) -> dict[str, Any]:
        with psycopg.connect(self.target_conninfo) as conn:
            cur = conn.execute(
                "SELECT * FROM cdc_applied WHERE source_region = %s", (self.source_region,)
            )
            names = [d.name for d in cur.description or []]
            row = cur.fetchone()
        return dict(zip(names, row, strict=True)) if row else {}


def _run(conninfo: str, sql: str, params: Any) -> list[tuple[Any, ...]]:
    with psycopg.connect(conninfo, autocommit=True) as conn:
        cur = conn.execute(sql.encode(), params)  # type: ignore[call-overload]
        return cur.fetchall() if cur.description else []


@contextmanager
def cdc_pair(harness: Harness, bootstrap: str) -> Iterator[CdcPair]:
    suffix = uuid.uuid4().hex[:8]
    source_region, target_region = f"src-{suffix}", f"dst-{suffix}"
    name = f"switchyard_cdc_{suffix}"
    clusters = (harness.region_dbs["region-a"], harness.region_dbs["region-b"])
    urls = [cluster.fresh_database(name) for cluster in clusters]
    for url in urls:
        migrate.upgrade(url, schema=migrate.REGION)
    source_conninfo, target_conninfo = (c.conninfo(name) for c in clusters)
    _run(source_conninfo, "INSERT INTO region_state VALUES (%s, 'primary', 1)", (source_region,))
    _run(target_conninfo, "INSERT INTO region_state VALUES (%s, 'standby', 1)", (target_region,))
    pair = CdcPair(
        bootstrap=bootstrap,
        source_region=source_region,
        target_region=target_region,
        source_conninfo=source_conninfo,
        target_conninfo=target_conninfo,
        topic=f"test.cdc.{suffix}",
        dead_letter_topic=f"test.cdc.dead-letter.{suffix}",
        group=f"test.cdc-sink.{suffix}",
    )
    try:
        yield pair
    finally:
        for conninfo, region in (
            (source_conninfo, source_region),
            (target_conninfo, target_region),
        ):
            _drop_slot(conninfo, slot_name(region))
            # Origins are cluster-wide and each holds one of max_replication_slots' states.
            _run(
                conninfo,
                "SELECT pg_replication_origin_drop(roname) FROM pg_replication_origin "
                "WHERE roname LIKE %s",
                (f"switchyard_cdc_%{suffix}",),
            )
        for cluster in clusters:
            with psycopg.connect(cluster.conninfo(), autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')  # type: ignore[arg-type]


def _drop_slot(conninfo: str, slot: str) -> None:
    deadline = time.monotonic() + 10
    while True:
        try:
            _run(
                conninfo,
                "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots "
                "WHERE slot_name = %s",
                (slot,),
            )
            return
        except psycopg.errors.ObjectInUse:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


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
