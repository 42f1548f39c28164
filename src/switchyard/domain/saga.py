"""The failover saga as stored values: its steps, their order, and what a failure means. Pure.

A failover runs these steps in order, each persisted before and after it runs:

    check_readiness → fence_source → [wait_replication → (restore_source)] → promote_target
    → update_dns → verify_dns → verify_probe

``wait_replication`` and ``restore_source`` belong to planned switchovers only (zero
acknowledged writes lost). ``restore_source`` runs only when ``wait_replication`` failed, and
is then the last step: it rolls the switchover back; otherwise it is skipped.

Invariants:

- The new epoch is fixed when the failover is created (one more than any recorded), so a
  resumed step writes the same epoch as the first attempt: every step is idempotent.
- A step that fails *before* ``fence_source`` aborts the failover: nothing has changed yet.
- A failed ``wait_replication`` is final and is the stored decision to roll back: from then
  on the only step left is ``restore_source`` (``next_step``), never ``promote_target``,
  whoever leads. ``restore_source`` makes the source primary again at ``rollback_epoch``
  (the failover's epoch + 1: the fence already recorded the source standby at the
  failover's epoch, and a region never holds two roles at one epoch). That epoch is fixed
  by the stored failover, so a resumed rollback writes the same state. A failed rollback
  stays resumable like any later step; once it succeeded the failover ends ``aborted``.
  The next failover takes one more than any recorded epoch, so never the rollback's.
- Any other failure after the fence leaves the failover running at that step, retried
  every cycle by whoever holds the lease: after the fence there is no safe way back but
  the rollback above, only forward.
- A dry run checks readiness and records what every other step would do, changing nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from uuid import UUID

from switchyard.domain.audit import JsonObject
from switchyard.domain.failover import DrillKind, Trigger


class Step(StrEnum):
    CHECK_READINESS = "check_readiness"
    FENCE_SOURCE = "fence_source"
    WAIT_REPLICATION = "wait_replication"
    RESTORE_SOURCE = "restore_source"
    PROMOTE_TARGET = "promote_target"
    UPDATE_DNS = "update_dns"
    VERIFY_DNS = "verify_dns"
    VERIFY_PROBE = "verify_probe"


class StepStatus(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    SKIPPED = "skipped"


class FailoverState(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    ABORTED = "aborted"


FINISHED = frozenset({FailoverState.SUCCEEDED, FailoverState.FAILED, FailoverState.ABORTED})


PLANNED_ONLY = frozenset({Step.WAIT_REPLICATION, Step.RESTORE_SOURCE})
_DONE = frozenset({StepStatus.SUCCEEDED, StepStatus.SKIPPED})


def steps_for(planned: bool) -> tuple[Step, ...]:
    """The steps of a failover, in order; only a planned switchover waits for replication
    (and may roll back)."""
    return tuple(s for s in Step if planned or s not in PLANNED_ONLY)


def aborts_on_failure(step: Step) -> bool:
    """Whether a failure of ``step`` aborts the failover at once: nothing changed yet."""
    return step is Step.CHECK_READINESS


def rolls_back_on_failure(step: Step) -> bool:
    """Whether a failure of ``step`` is final and turns the failover into its rollback."""
    return step is Step.WAIT_REPLICATION


@dataclass(frozen=True, slots=True)
class StepRecord:
    seq: int
    name: Step
    status: StepStatus
    reason: str = ""
    started_at: datetime | None = None
    finished_at: datetime | None = None
    attempts: int = 0
    detail: JsonObject | None = None


@dataclass(frozen=True, slots=True)
class FailoverRecord:
    id: UUID
    source: str
    target: str
    trigger: Trigger
    state: FailoverState
    reason: str
    epoch: int  # the epoch the target is promoted at (and the source fenced at)
    actor: str
    started_at: datetime
    steps: tuple[StepRecord, ...]
    dry_run: bool = False
    intent_id: UUID | None = None
    drill_id: UUID | None = None
    drill_kind: DrillKind | None = None
    finished_at: datetime | None = None

    @property
    def planned(self) -> bool:
        return self.drill_kind is DrillKind.PLANNED

    @property
    def rolling_back(self) -> bool:
        """``wait_replication`` failed: the switchover is (being) rolled back."""
        return any(
            s.name is Step.WAIT_REPLICATION and s.status is StepStatus.FAILED for s in self.steps
        )

    @property
    def rollback_epoch(self) -> int:
        """The epoch ``restore_source`` makes the source primary at (see the invariants)."""
        return self.epoch + 1

    def next_step(self) -> StepRecord | None:
        """The step to run next, None when there is none left.

        Rolling back: ``restore_source`` until it succeeded. Otherwise the first step not
        yet succeeded or skipped, ``restore_source`` aside.
        """
        if self.rolling_back:
            return next(
                (s for s in self.steps if s.name is Step.RESTORE_SOURCE and s.status not in _DONE),
                None,
            )
        return next(
            (s for s in self.steps if s.status not in _DONE and s.name is not Step.RESTORE_SOURCE),
            None,
        )

    def step(self, name: Step) -> StepRecord | None:
        return next((s for s in self.steps if s.name is name), None)


@dataclass(frozen=True, slots=True)
class StepOutcome:
    """What running a step did: ``ok``, a sentence, and figures for the timeline."""

    ok: bool
    reason: str
    code: str = "ok"
    detail: JsonObject | None = None


@dataclass(frozen=True, slots=True)
class DrillRecord:
    id: UUID
    kind: DrillKind
    fault: str  # "fence" | "external"
    target: str
    status: str  # scheduled | running | passed | failed | aborted
    objectives: JsonObject | None
    created_at: datetime
    failover_id: UUID | None = None
    report: JsonObject | None = None
    finished_at: datetime | None = None
