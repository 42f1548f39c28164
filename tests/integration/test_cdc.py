"""CDC on real PostgreSQL (both regions' servers) and the harness broker: the source streams
pgoutput through a slot, the sink applies in the standby."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import timedelta

import pytest

from support.cdc import CdcPair, cdc_pair, running, wait_for
from switchyard.devenv.harness import Harness
from switchyard.domain.replication import loss_at_fence


@pytest.fixture
def pair(harness: Harness, kafka_bootstrap: str) -> Iterator[CdcPair]:
    with cdc_pair(harness, kafka_bootstrap) as p:
        yield p


def _session(pair: CdcPair, n_turns: int = 2) -> uuid.UUID:
    sid = uuid.uuid4()
    pair.source_sql(
        "INSERT INTO dialog_sessions (id, region, epoch, state) VALUES (%s, %s, 1, '{\"a\": 1}')",
        (sid, pair.source_region),
    )
    for seq in range(1, n_turns + 1):
        pair.source_sql(
            "INSERT INTO dialog_turns (session_id, seq, role, text, kind, region, epoch, citations)"
            " VALUES (%s, %s, 'user', %s, 'message', %s, 1, '[\"doc\"]')",
            (sid, seq, f"turn {seq}", pair.source_region),
        )
    return sid


def _turns(pair: CdcPair, which: str = "target") -> list[tuple[object, ...]]:
    run = pair.target_sql if which == "target" else pair.source_sql
    return run("SELECT session_id, seq, text, citations::text FROM dialog_turns ORDER BY 1, 2")


def test_rows_written_in_the_primary_reach_the_standby(pair: CdcPair) -> None:
    before = _session(pair, 3)  # exists before the slot: arrives by the initial snapshot
    with running(pair.source(), "source"), running(pair.sink(), "sink"):
        wait_for(lambda: len(_turns(pair)) == 3, what="the snapshot")
        after = _session(pair, 2)
        pair.source_sql("UPDATE dialog_turns SET text = 'edited' WHERE session_id = %s", (after,))
        pair.source_sql("DELETE FROM dialog_turns WHERE session_id = %s AND seq = 3", (before,))
        wait_for(lambda: _turns(pair) == _turns(pair, "source"), what="the changes")
    row = pair.applied_row()
    assert row["tx_seq"] >= 4
    assert row["gap"] is None
    assert pair.target_sql("SELECT state::text FROM dialog_sessions WHERE id = %s", (after,)) == [
        ('{"a": 1}',)
    ]


def _dead_letters(pair: CdcPair, expect: int) -> list[dict[str, bytes]]:
    from confluent_kafka import Consumer

    consumer = Consumer(
        {
            "bootstrap.servers": pair.bootstrap,
            "group.id": f"dlq-reader-{uuid.uuid4().hex[:6]}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe([pair.dead_letter_topic])
    found: list[dict[str, bytes]] = []
    try:
        for _ in range(100):
            msg = consumer.poll(0.2)
            if msg is not None and msg.error() is None:
                found.append(dict(msg.headers() or []))
            if len(found) >= expect:
                break
    finally:
        consumer.close()
    return found


def test_a_transaction_the_standby_cannot_take_is_parked_and_later_ones_still_apply(
    pair: CdcPair,
) -> None:
    with running(pair.source(), "source"), running(pair.sink(), "sink"):
        first = _session(pair, 1)
        wait_for(lambda: len(_turns(pair)) == 1, what="the first session")
        # The primary's schema moves ahead of the standby's: a column the standby lacks.
        pair.source_sql("ALTER TABLE dialog_sessions ADD COLUMN mood text")
        poison = uuid.uuid4()
        pair.source_sql(
            "INSERT INTO dialog_sessions (id, region, epoch, mood) VALUES (%s, %s, 1, 'sunny')",
            (poison, pair.source_region),
        )
        pair.source_sql(
            "INSERT INTO dialog_turns (session_id, seq, role, text, kind, region, epoch)"
            " VALUES (%s, 2, 'user', 'still flowing', 'message', %s, 1)",
            (first, pair.source_region),
        )
        wait_for(lambda: len(_turns(pair)) == 2, what="the transaction after the poison")
    assert pair.target_sql("SELECT 1 FROM dialog_sessions WHERE id = %s", (poison,)) == []
    assert pair.applied_row()["dead_letters"] == 1
    (parked,) = _dead_letters(pair, 1)
    assert b"schema mismatch" in parked["switchyard.error"]
    assert b"mood" in parked["switchyard.error"]


def test_changes_from_an_older_epoch_than_the_standby_are_refused(pair: CdcPair) -> None:
    with running(pair.source(), "source"), running(pair.sink(), "sink"):
        _session(pair, 1)
        wait_for(lambda: len(_turns(pair)) == 1, what="the first session")
        # The standby moved to epoch 2 (a failover elsewhere); the source still writes at 1.
        pair.target_sql(
            "UPDATE region_state SET epoch = 2 WHERE region = %s", (pair.target_region,)
        )
        late = _session(pair, 1)
        wait_for(lambda: pair.applied_row()["stale_refused"] >= 2, what="the refusal")
    assert pair.target_sql("SELECT 1 FROM dialog_sessions WHERE id = %s", (late,)) == []
    assert all(b"stale epoch 1 < 2" in h["switchyard.error"] for h in _dead_letters(pair, 2))


def test_a_promoted_standby_stops_applying(pair: CdcPair) -> None:
    with running(pair.source(), "source"), running(pair.sink(), "sink"):
        _session(pair, 1)
        wait_for(lambda: len(_turns(pair)) == 1, what="the first session")
        pair.target_sql(
            "UPDATE region_state SET role = 'primary', epoch = 2 WHERE region = %s",
            (pair.target_region,),
        )
        _session(pair, 1)
        # The source keeps publishing (its heartbeats prove it is alive and streaming) ...
        seq = pair.applied_row()["tx_seq"]
        wait_for(
            lambda: pair.source_sql("SELECT tx_seq FROM cdc_source_positions")[0][0] > seq,
            what="the source to publish the new session",
        )
    # ... but nothing more is applied in the new primary.
    assert len(_turns(pair)) == 1


def test_heartbeats_keep_lag_fresh_while_idle_and_the_monitor_reads_all_four_figures(
    pair: CdcPair,
) -> None:
    from sqlalchemy import create_engine

    from switchyard.adapters.replication_postgres import PostgresReplicationMonitor

    def url(conninfo: str) -> str:
        import psycopg

        params = psycopg.conninfo.conninfo_to_dict(conninfo)
        return (
            f"postgresql+psycopg://{params['user']}:{params['password']}@{params['host']}:"
            f"{params['port']}/{params['dbname']}"
        )

    engines = {
        pair.source_region: create_engine(url(pair.source_conninfo)),
        pair.target_region: create_engine(url(pair.target_conninfo)),
    }
    monitor = PostgresReplicationMonitor(engines)
    try:
        with running(pair.source(), "source"), running(pair.sink(), "sink"):
            _session(pair, 1)
            wait_for(lambda: len(_turns(pair)) == 1, what="the session")
            first = pair.applied_row()["heartbeat_at"]
            wait_for(
                lambda: (pair.applied_row()["heartbeat_at"] or first) > (first or 0),
                timeout=5,
                what="a heartbeat while idle",
            )
            lag = wait_for(
                lambda: (
                    (
                        lag := monitor.lag(pair.source_region, pair.target_region)
                    ).consumer_lag_messages
                    == 0
                    and lag
                ),
                what="the sink's status",
            )
            _api_reports_the_pair(pair, monitor)
        assert lag.slot_exists
        assert lag.lag_bytes is not None
        assert lag.lag_bytes >= 0
        assert lag.lag_seconds is not None
        assert 0 <= lag.lag_seconds < 30
        assert lag.heartbeat_age_seconds is not None
        assert lag.heartbeat_age_seconds < 5
        assert lag.gap is None
        assert lag.gate_seconds() is not None
        assert monitor.wal_position(pair.source_region) > 0
        # The source times of what was applied bound the loss at a fence (RPO); without them
        # an unplanned failover's report said nothing of the writes it lost.
        assert lag.source_commit_at is not None
        assert lag.heartbeat_at is not None
        assert lag.heartbeat_at >= lag.source_commit_at
        assert lag.applied_lsn is not None
        fenced_at = lag.heartbeat_at + timedelta(seconds=2)
        loss = loss_at_fence(lag, lag.applied_lsn + 100, fenced_at)
        assert loss is not None
        assert loss.rpo_seconds == pytest.approx(2.0)
        assert pair.applied_row()["dead_letters"] == 0
    finally:
        for engine in engines.values():
            engine.dispose()


def test_lost_records_open_a_gap_that_holds_apply_until_a_resync_heals_it(pair: CdcPair) -> None:
    from switchyard.adapters.events_kafka import KafkaTopics
    from switchyard.domain.secrets import Secret
    from switchyard.replication.resync import request_resync

    kept = _session(pair, 2)
    with running(pair.source(), "source"), running(pair.sink(), "sink"):
        wait_for(lambda: len(_turns(pair)) == 2, what="the snapshot")
    # While the sink is down the source publishes more, then the broker loses the topic.
    with running(pair.source(), "source"):
        lost = _session(pair, 2)
        pair.source_sql("DELETE FROM dialog_turns WHERE session_id = %s AND seq = 2", (kept,))
        seq = pair.applied_row()["tx_seq"]
        wait_for(
            lambda: pair.source_sql("SELECT tx_seq FROM cdc_source_positions")[0][0] >= seq + 4,
            what="the source to confirm",
        )
    topics = KafkaTopics(pair.bootstrap)
    topics.delete(pair.topic)
    topics.ensure(pair.topic)
    with running(pair.source(), "source"), running(pair.sink(), "sink"):
        gap = wait_for(lambda: pair.applied_row()["gap"], what="the gap to be reported")
        assert gap["reason"] == "confirmed_missing"
        assert not gap["accepted"]
        assert [g.reason.value for g in pair.gaps] == ["confirmed_missing"]
        # Held, not skipped: a change written now does not reach the standby either.
        late = _session(pair, 1)
        request = None
        assert pair.target_sql("SELECT 1 FROM dialog_sessions WHERE id = %s", (late,)) == []
        request = request_resync(
            source=pair.source_region,
            source_db=Secret(pair.source_conninfo),
            target_db=Secret(pair.target_conninfo),
        )
        assert request.gap is not None
        assert request.gap.accepted
        wait_for(
            lambda: _turns(pair) == _turns(pair, "source") and pair.applied_row()["gap"] is None,
            what="the re-sync",
        )
    assert pair.applied_row()["resync"] is None
    target_sessions = pair.target_sql("SELECT id FROM dialog_sessions ORDER BY id")
    assert target_sessions == pair.source_sql("SELECT id FROM dialog_sessions ORDER BY id")
    assert (lost,) in target_sessions


def _api_reports_the_pair(pair: CdcPair, monitor: object) -> None:
    """GET /v1/replication: all four figures for the active pair, viewers only."""
    from datetime import UTC, datetime

    from fastapi.testclient import TestClient

    from support.api import VIEWER, read_only_context
    from switchyard.api.app import create_app
    from switchyard.domain.region import Region, RegionRole

    now = datetime.now(UTC)
    regions = [
        Region(pair.source_region, RegionRole.PRIMARY, 1, now),
        Region(pair.target_region, RegionRole.STANDBY, 1, now),
    ]
    context = read_only_context(regions, now, replication=monitor)  # type: ignore[arg-type]
    with TestClient(create_app(context)) as client:
        assert client.get("/v1/replication").status_code == 401
        body = client.get("/v1/replication", headers=VIEWER).json()
        scraped = client.get("/metrics").text
    (active,) = [p for p in body["items"] if p["active"]]
    assert (active["source"], active["target"]) == (pair.source_region, pair.target_region)
    for figure in ("lag_bytes", "lag_seconds", "consumer_lag_messages", "heartbeat_age_seconds"):
        assert active[figure] is not None, figure
    assert active["gap"] is None
    assert active["slot_active"] is True
    assert f'switchyard_replication_lag_seconds{{source="{pair.source_region}"' in scraped
