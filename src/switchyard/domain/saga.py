"""The failover saga as stored values: its steps, their order, and what a failure means. Pure.

A failover runs these steps in order, each persisted before and after it runs:

    check_readiness → fence_source → [wait_replication] → promote_target → update_dns
    → verify_dns → verify_probe

``wait_replication`` belongs to planned switchovers only (zero acknowledged writes lost).

Invariants:

- The new epoch is fixed when the failover is created (one more than any recorded), so a
  resumed step writes the same epoch as the first attempt: every step is idempotent.
- A step that fails *before* ``fence_source`` aborts the failover: nothing has changed yet.
  A failed ``wait_replication`` rolls the fence back (the source is primary again, at the new
  epoch) and aborts: a planned switchover never loses writes. Any later failure leaves the
  failover running at that step, retried every cycle by whoever holds the lease: after the
  fence there is no safe way back, only forward.
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


def steps_for(planned: bool) -> tuple[Step, ...]:
    """The steps of a failover, in order; only a planned switchover waits for replication."""
    return tuple(s for s in Step if planned or s is not Step.WAIT_REPLICATION)


def aborts_on_failure(step: Step) -> bool:
    """Whether a failure of ``step`` aborts the failover rather than leaving it resumable."""
    return step in (Step.CHECK_READINESS, Step.WAIT_REPLICATION)


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

    def next_step(self) -> StepRecord | None:
        """The first step not yet succeeded or skipped, None when all are done."""
        return next(
            (s for s in self.steps if s.status not in (StepStatus.SUCCEEDED, StepStatus.SKIPPED)),
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
