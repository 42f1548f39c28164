"""RPO at an unplanned fence from CDC positions (``domain.replication.loss_at_fence``): what the
target applied against the source's WAL at the fence, no rows read."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from switchyard.adapters.replication_memory import caught_up
from switchyard.domain.replication import loss_at_fence

FENCED_AT = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
APPLIED = replace(
    caught_up("region-a", "region-b"),
    applied_lsn=70_000,
    lag_bytes=600,
    consumer_lag_messages=2,
    source_commit_at=FENCED_AT - timedelta(seconds=30),
    heartbeat_at=FENCED_AT - timedelta(seconds=2),
)


def test_applied_up_to_the_fence_means_nothing_lost() -> None:
    loss = loss_at_fence(APPLIED, 70_000, FENCED_AT)
    assert loss is not None
    assert (loss.unapplied_bytes, loss.rpo_seconds, loss.unreplicated_writes) == (0, 0.0, 0)
    assert loss.detail()["rpo_exact"] is True


def test_behind_the_fence_bounds_the_rpo_by_the_newest_thing_applied() -> None:
    loss = loss_at_fence(APPLIED, 71_500, FENCED_AT)
    assert loss is not None
    assert loss.unapplied_bytes == 1_500
    assert loss.unapplied_records == 2
    assert loss.unpublished_bytes == 600  # of the 1 500: the rest is in the log, unapplied
    assert loss.rpo_seconds == 2.0  # the heartbeat 2 s before the fence, not the commit 30 s
    assert loss.unreplicated_writes is None  # positions cannot count writes
    detail = loss.detail()
    assert (detail["rpo_from"], detail["rpo_exact"]) == ("positions", False)

    no_heartbeat = replace(APPLIED, heartbeat_at=None)
    assert loss_at_fence(no_heartbeat, 71_500, FENCED_AT).rpo_seconds == 30.0  # type: ignore[union-attr]


def test_with_the_source_unreachable_the_bound_comes_from_what_was_applied() -> None:
    loss = loss_at_fence(APPLIED, None, FENCED_AT)  # its WAL position could not be read
    assert loss is not None
    assert (loss.fence_lsn, loss.unapplied_bytes, loss.unreplicated_writes) == (None, None, None)
    assert loss.rpo_seconds == 2.0
    assert loss.detail()["rpo_exact"] is False
    untimed = replace(APPLIED, source_commit_at=None, heartbeat_at=None)
    assert loss_at_fence(untimed, None, FENCED_AT) is None


def test_positions_cannot_tell_without_anything_applied_or_across_a_gap() -> None:
    assert loss_at_fence(replace(APPLIED, applied_lsn=None), 71_500, FENCED_AT) is None
    gap = replace(APPLIED, gap={"reason": "sequence_jump"})
    assert loss_at_fence(gap, 71_500, FENCED_AT) is None
    assert loss_at_fence(replace(APPLIED, resyncing=True), 71_500, FENCED_AT) is None
