"""CDC on real PostgreSQL (both regions' servers) and the harness broker: the source streams
pgoutput through a slot, the sink applies in the standby."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from support.cdc import CdcPair, cdc_pair, running, wait_for
from switchyard.devenv.harness import Harness


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
    assert row["tx_seq"] >= 4 and row["gap"] is None
    assert pair.target_sql("SELECT state::text FROM dialog_sessions WHERE id = %s", (after,)) == [
        ('{"a": 1}',)
    ]
