"""The lag the failover gate compares with ``max_lag_seconds`` (``ReplicationLag.gate_seconds``)."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest

from switchyard.domain.replication import STATUS_STALE_SECONDS, ReplicationLag

# A standby that applied everything, a second ago, 0.3 s after the source committed it.
CAUGHT_UP = ReplicationLag(
    source="eu-west",
    target="us-east",
    lag_bytes=0,
    lag_seconds=0.3,
    consumer_lag_messages=0,
    heartbeat_age_seconds=1.0,
    slot_exists=True,
    slot_active=True,
    applied_lsn=0x1_6B37_4D48,
    applied_tx_seq=41,
    source_epoch=3,
    behind_seconds=1.2,
    status_age_seconds=1.0,
    gap=None,
    resyncing=False,
    dead_letters=0,
    stale_refused=0,
)
GAP = {"reason": "sequence_jump", "after_seq": 40, "seen_seq": 44, "accepted": False}


@pytest.mark.parametrize(
    "status_age_seconds",
    [None, STATUS_STALE_SECONDS + 0.001, 3600.0],
    ids=["never-reported", "just-stale", "an-hour-old"],
)
def test_without_a_fresh_sink_status_the_lag_is_unknown(status_age_seconds: float | None) -> None:
    lag = replace(CAUGHT_UP, status_age_seconds=status_age_seconds)
    assert lag.gate_seconds() is None
    # Even a gap in a stale status says nothing about now.
    assert replace(lag, gap=GAP).gate_seconds() is None


def test_a_status_exactly_at_the_staleness_limit_still_counts() -> None:
    lag = replace(CAUGHT_UP, status_age_seconds=STATUS_STALE_SECONDS)
    assert lag.gate_seconds() == pytest.approx(0.3)


@pytest.mark.parametrize(
    "lag",
    [
        replace(CAUGHT_UP, gap=GAP),
        replace(CAUGHT_UP, gap={**GAP, "accepted": True}, resyncing=True),
        replace(CAUGHT_UP, resyncing=True),
        replace(CAUGHT_UP, gap=GAP, consumer_lag_messages=12, behind_seconds=0.1),
    ],
    ids=["open-gap", "accepted-gap-resyncing", "resync-without-gap", "gap-with-backlog"],
)
def test_a_gap_or_a_resync_is_infinitely_behind(lag: ReplicationLag) -> None:
    assert lag.gate_seconds() == math.inf


def test_a_caught_up_sink_reports_the_apply_delay_not_the_time_since_the_last_write() -> None:
    # The source died a minute ago: nothing new to apply, so the standby is not behind.
    lag = replace(CAUGHT_UP, behind_seconds=60.0, heartbeat_age_seconds=60.0)
    assert lag.gate_seconds() == pytest.approx(0.3)


def test_a_caught_up_sink_that_has_applied_nothing_yet_is_not_behind() -> None:
    lag = replace(CAUGHT_UP, lag_seconds=None, behind_seconds=None)
    assert lag.gate_seconds() == 0.0


@pytest.mark.parametrize(
    ("consumer_lag_messages", "behind_seconds"),
    [(5, 42.5), (None, 7.0), (1, None)],
    ids=["backlog", "backlog-unknown", "nothing-applied-yet"],
)
def test_with_records_still_to_process_the_lag_is_how_far_behind_the_source_it_is(
    consumer_lag_messages: int | None, behind_seconds: float | None
) -> None:
    lag = replace(
        CAUGHT_UP, consumer_lag_messages=consumer_lag_messages, behind_seconds=behind_seconds
    )
    assert lag.gate_seconds() == behind_seconds
