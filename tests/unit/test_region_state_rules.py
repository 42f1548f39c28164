"""A region's state changes (``state_change_refusal``) and the saga's rollback as stored steps
(``FailoverRecord.next_step``): plain values in, verdicts out."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from switchyard.domain.failover import DrillKind, Trigger
from switchyard.domain.region import RegionRole, state_change_refusal
from switchyard.domain.saga import (
    FailoverRecord,
    FailoverState,
    Step,
    StepRecord,
    StepStatus,
    steps_for,
)

P, S, F = RegionRole.PRIMARY, RegionRole.STANDBY, RegionRole.FENCED
NOW = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("before", "after", "allowed"),
    [
        ((S, 2), (P, 3), True),  # a new role at a newer epoch
        ((P, 2), (P, 2), True),  # the same role at the same epoch: idempotent
        ((S, 2), (S, 5), True),
        ((P, 3), (F, 2), False),  # never back in time
        ((S, 2), (P, 2), False),  # the rolled-back switchover's old mistake
        ((P, 2), (F, 2), False),  # a fence must move to a newer epoch too
    ],
)
def test_a_region_never_holds_two_roles_at_one_epoch(
    before: tuple[RegionRole, int], after: tuple[RegionRole, int], allowed: bool
) -> None:
    why = state_change_refusal("a", before=before, after=after)
    assert (why is None) is allowed
    if not allowed:
        assert why is not None
        assert why.startswith("region a: epoch")


@pytest.mark.parametrize(
    ("before_token", "token", "allowed"),
    [(4, 5, True), (5, 5, True), (0, 1, True), (5, 4, False)],
)
def test_a_write_from_an_older_leader_is_refused_whatever_its_epoch(
    before_token: int, token: int, allowed: bool
) -> None:
    why = state_change_refusal(
        "a", before=(S, 2), after=(P, 9), before_token=before_token, token=token
    )
    assert (why is None) is allowed
    if not allowed:
        assert why == (
            "region a: fencing token 4 is older than the token 5 that wrote its state "
            "(a newer leader has acted)"
        )


def switchover(**status: StepStatus) -> FailoverRecord:
    steps = tuple(
        StepRecord(i, name, status.get(name.value, StepStatus.PENDING))
        for i, name in enumerate(steps_for(planned=True))
    )
    return FailoverRecord(
        id=uuid.uuid4(),
        source="a",
        target="b",
        trigger=Trigger.DRILL,
        state=FailoverState.RUNNING,
        reason="switchover",
        epoch=4,
        actor="ops",
        started_at=NOW,
        steps=steps,
        drill_kind=DrillKind.PLANNED,
    )


def test_only_a_planned_switchover_has_the_rollback_step_right_after_its_wait() -> None:
    assert steps_for(planned=True)[2:4] == (Step.WAIT_REPLICATION, Step.RESTORE_SOURCE)
    assert Step.RESTORE_SOURCE not in steps_for(planned=False)


def test_a_failed_wait_leads_to_the_rollback_and_never_to_the_promotion() -> None:
    done = StepStatus.SUCCEEDED
    failed = switchover(check_readiness=done, fence_source=done, wait_replication=StepStatus.FAILED)
    assert failed.rolling_back
    assert failed.rollback_epoch == 5  # the source is standby at 4 already
    step = failed.next_step()
    assert step is not None
    assert step.name is Step.RESTORE_SOURCE

    # Resumed after a crash or a failed attempt: still the rollback, nothing else.
    for status in (StepStatus.RUNNING, StepStatus.FAILED):
        resumed = switchover(
            check_readiness=done, fence_source=done, wait_replication=StepStatus.FAILED,
            restore_source=status,
        )  # fmt: skip
        assert resumed.next_step() is not None
        assert resumed.next_step().name is Step.RESTORE_SOURCE  # type: ignore[union-attr]

    rolled_back = switchover(
        check_readiness=done, fence_source=done, wait_replication=StepStatus.FAILED,
        restore_source=done,
    )  # fmt: skip
    assert rolled_back.next_step() is None  # finished: the promotion stays pending forever


def test_a_caught_up_wait_goes_on_to_the_promotion_past_the_rollback() -> None:
    done = StepStatus.SUCCEEDED
    caught_up = switchover(check_readiness=done, fence_source=done, wait_replication=done)
    assert not caught_up.rolling_back
    step = caught_up.next_step()
    assert step is not None
    assert step.name is Step.PROMOTE_TARGET  # the rollback step, still pending, is passed

    # A wait that is still running (its controller crashed) is run again, not rolled back.
    waiting = switchover(
        check_readiness=done, fence_source=done, wait_replication=StepStatus.RUNNING
    )
    assert not waiting.rolling_back
    assert waiting.next_step() is not None
    assert waiting.next_step().name is Step.WAIT_REPLICATION  # type: ignore[union-attr]
