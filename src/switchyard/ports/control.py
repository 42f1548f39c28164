"""The control plane's own store, as the controller loop uses it (the witness database).

Every adapter keeps these invariants (tests/contract/test_control_store.py checks them):

- Each method is one transaction: it happens entirely or not at all. An unreachable store
  raises ``TransientError``; the loop then does nothing this cycle (fail-safe).
- ``start_failover`` is one compare-and-set: it refuses (``ConflictError``) when another
  failover is pending or running, so two leaders in a race cannot both start one. It fixes the
  failover's epoch at one more than the highest recorded epoch, marks its intent running, links
  its drill, and creates its steps (pending) in order.
- ``set_region`` never lowers an epoch (``FencingError``) and keeps at most one primary
  (``ConflictError``).
- Every mutating method that acts for the leader takes its fencing ``token`` and refuses
  (``FencingError``) when a higher token has acted since: a deposed leader stops at once.
- Observations, failovers, steps and audit events are never deleted by the loop.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol
from uuid import UUID

from switchyard.domain.audit import JsonObject
from switchyard.domain.failover import (
    Decision,
    Intent,
    IntentRequest,
    LoopState,
    RejectIntent,
    StartFailover,
    Submitted,
)
from switchyard.domain.health import Observation
from switchyard.domain.region import Region, RegionRole
from switchyard.domain.saga import DrillRecord, FailoverRecord, FailoverState, StepStatus


@dataclass(frozen=True, slots=True)
class LoopStatus:
    state: LoopState
    code: str
    reason: str
    decided_at: datetime | None
    holder: str | None
    fencing_token: int | None


class ControlStore(Protocol):
    """What the loop (and the API, for intents) reads and writes in the control-plane database."""

    # -- intents (the API's only way to ask for action) ------------------------------------
    def submit_intent(self, request: IntentRequest) -> Submitted:
        """Store a failover or drill request for the loop.

        Refuses with ``NotFoundError`` (unknown target region), ``ConflictError`` with code
        ``target_is_primary``/``target_not_standby``/``failover_in_progress``/
        ``idempotency_conflict``. The same idempotency key with the same request returns the
        first submission (``created`` False).
        """
        ...

    def drill(self, drill_id: UUID) -> DrillRecord:
        """NotFoundError when there is none."""
        ...

    def armed_drill(self) -> DrillRecord | None:
        """The "external" drill waiting for the next automatic failover, if any."""
        ...

    # -- observing ------------------------------------------------------------------------
    def record_observations(self, observations: Sequence[Observation]) -> None:
        """Store one round's results (from any vantage)."""
        ...

    def observations_since(self, since: datetime) -> list[Observation]:
        """Every observation with ``at >= since``, oldest first."""
        ...

    def last_sign_of_life(
        self, region: str, *, since: datetime, until: datetime, gap: timedelta
    ) -> datetime | None:
        """``domain.health.last_sign_of_life`` over the stored observations of ``region``:
        the newest time in [since, until] it answered a probe, or that a span longer than
        ``gap`` without any observation of it ended. One cheap read: the fence step asks it
        every cycle while it waits out the isolation timeout."""
        ...

    def regions(self) -> list[Region]: ...

    def pending_intents(self) -> list[Intent]:
        """Intents not yet taken by the loop, oldest first."""
        ...

    def running_failover(self) -> FailoverRecord | None:
        """The failover that is pending or running, if any (at most one exists)."""
        ...

    def last_failover_finished_at(self) -> datetime | None:
        """When the newest failover that moved the primary finished (for the cooldown).

        Only a succeeded, real failover counts: a dry run changed nothing, and a refused
        intent or an aborted or rolled-back switchover left the primary where it was.
        """
        ...

    def loop_status(self) -> LoopStatus: ...

    def failover(self, failover_id: UUID) -> FailoverRecord:
        """The failover with its steps; NotFoundError when there is none (an intent the loop
        has not taken yet, or rejected, is reported by ``intent_status``)."""
        ...

    def intent_status(self, intent_id: UUID) -> tuple[str, str]:
        """(status, reason) of an intent: pending | running | succeeded | failed | rejected."""
        ...

    # -- acting (leader only; every call carries the lease's fencing token) ---------------
    def record_decision(self, decision: Decision, *, holder: str, token: int, at: datetime) -> None:
        """Remember the loop state; append an audit event when the code changed."""
        ...

    def start_failover(
        self, action: StartFailover, *, steps: Sequence[str], holder: str, token: int, at: datetime
    ) -> FailoverRecord: ...

    def reject_intent(self, action: RejectIntent, *, holder: str, token: int) -> None: ...

    def update_step(
        self,
        failover_id: UUID,
        seq: int,
        *,
        status: StepStatus,
        reason: str,
        at: datetime,
        detail: JsonObject | None = None,
        token: int,
    ) -> FailoverRecord:
        """Record a step starting (``RUNNING``: attempts + 1, started_at kept from the first
        attempt) or finishing; returns the failover as now stored."""
        ...

    def set_region(
        self, name: str, *, role: RegionRole, epoch: int, token: int, actor: str, reason: str
    ) -> Region:
        """Record the region's role at ``epoch`` with an audit event (before/after).

        Refuses (FencingError) an older epoch or another role at the recorded epoch
        (``domain.region.state_change_refusal``); the same role and epoch is a no-op."""
        ...

    def finish_failover(
        self,
        failover_id: UUID,
        *,
        state: FailoverState,
        reason: str,
        at: datetime,
        token: int,
        report: JsonObject | None = None,
    ) -> FailoverRecord:
        """End the failover; its intent and drill (with ``report``) end with it."""
        ...

    def audit(
        self,
        *,
        actor: str,
        action: str,
        region: str | None,
        reason: str,
        code: str,
        before: JsonObject | None = None,
        after: JsonObject | None = None,
    ) -> None: ...
