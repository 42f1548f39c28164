"""Two region databases joined by CDC through a harness broker, wired in-process the way
``bootstrap`` wires ``switchyard cdc source|sink``: for the integration tests and the CDC
benchmark, which must measure and test the same thing.

Fresh databases (one on each region's PostgreSQL), unique region names (so slots and
replication origins never collide), unique topics. A ``CdcWiring`` is plain strings, so a
benchmark can hand it to a spawned process.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import psycopg

from switchyard.adapters.events_kafka import KafkaPublisher, KafkaSubscriber, KafkaTopics
from switchyard.db import migrate
from switchyard.devenv.harness import Harness
from switchyard.domain.cdc import Gap
from switchyard.domain.secrets import Secret
from switchyard.replication.catalog import slot_name
from switchyard.replication.sink import Applied, ChangeSink, SinkSettings, origin_name
from switchyard.replication.source import ChangeSource, SourceSettings


def sql(conninfo: str, query: str, params: Any = None) -> list[tuple[Any, ...]]:
    """One autocommit statement; its rows, if it returns any."""
    with psycopg.connect(conninfo, autocommit=True) as conn:
        cur = conn.execute(query.encode(), params)
        return cur.fetchall() if cur.description else []


def drop_slot(conninfo: str, slot: str) -> None:
    """Drop ``slot`` if it exists, waiting up to 10 s for its reader to let go."""
    deadline = time.monotonic() + 10
    while True:
        try:
            sql(
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


@dataclass(frozen=True)
class CdcWiring:
    bootstrap: str
    database: str
    source_region: str
    target_region: str
    source_conninfo: str
    target_conninfo: str
    topic: str
    dead_letter_topic: str
    group: str

    @classmethod
    def fresh(cls, h: Harness, prefix: str, database: str | None = None) -> CdcWiring:
        """New databases migrated to the region schema, the source recorded primary and the
        target standby (both at epoch 1)."""
        suffix = uuid.uuid4().hex[:8]
        name = database or f"switchyard_cdc_{suffix}"
        clusters = (h.region_dbs["region-a"], h.region_dbs["region-b"])
        for cluster in clusters:
            migrate.upgrade(cluster.fresh_database(name), schema=migrate.REGION)
        w = cls(
            bootstrap=h.kafka.bootstrap_servers,
            database=name,
            source_region=f"src-{suffix}",
            target_region=f"dst-{suffix}",
            source_conninfo=clusters[0].conninfo(name),
            target_conninfo=clusters[1].conninfo(name),
            topic=f"{prefix}.cdc.{suffix}",
            dead_letter_topic=f"{prefix}.cdc.dead-letter.{suffix}",
            group=f"{prefix}.cdc-sink.{suffix}",
        )
        sql(
            w.source_conninfo,
            "INSERT INTO region_state VALUES (%s, 'primary', 1)",
            (w.source_region,),
        )
        sql(
            w.target_conninfo,
            "INSERT INTO region_state VALUES (%s, 'standby', 1)",
            (w.target_region,),
        )
        return w

    def source(self, client_id: str = "cdc-source") -> ChangeSource:
        settings = SourceSettings(
            region=self.source_region,
            conninfo=Secret(self.source_conninfo),
            database=self.database,
            topic=self.topic,
        )
        return ChangeSource(
            settings,
            lambda: KafkaPublisher(self.bootstrap, client_id=client_id, linger_ms=1),
            KafkaTopics(self.bootstrap),
        )

    def sink(
        self,
        client_id: str = "cdc-sink",
        on_applied: Callable[[Applied], None] = lambda applied: None,
        on_gap: Callable[[str, Gap], None] = lambda source, gap: None,
    ) -> ChangeSink:
        settings = SinkSettings(
            region=self.target_region,
            conninfo=Secret(self.target_conninfo),
            topics={self.source_region: self.topic},
            dead_letter_topic=self.dead_letter_topic,
            group_id=self.group,
        )
        return ChangeSink(
            settings,
            lambda: KafkaSubscriber(self.bootstrap, group_id=self.group, client_id=client_id),
            lambda: KafkaPublisher(self.bootstrap, client_id=f"{client_id}-dead-letters"),
            KafkaTopics(self.bootstrap),
            on_applied=on_applied,
            on_gap=on_gap,
        )

    def retire(self, h: Harness) -> None:
        """Slots, replication origins (cluster-wide, each holding one of
        max_replication_slots' states) and the databases dropped."""
        for conninfo, region in (
            (self.source_conninfo, self.source_region),
            (self.target_conninfo, self.target_region),
        ):
            drop_slot(conninfo, slot_name(region))
            sql(
                conninfo,
                "SELECT pg_replication_origin_drop(roname) FROM pg_replication_origin "
                "WHERE roname = %s",
                (origin_name(region),),
            )
        for cluster in (h.region_dbs["region-a"], h.region_dbs["region-b"]):
            sql(cluster.conninfo(), f'DROP DATABASE IF EXISTS "{self.database}" WITH (FORCE)')
