"""In-memory ControlStore twin for scenario tests: the same rules as the PostgreSQL store.

One lock makes every method atomic, as one transaction is in PostgreSQL. ``clock`` plays the
database clock for the timestamps the store itself sets. ``fail`` makes every call raise
TransientError, to play an unreachable witness.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import datetime
from uuid import UUID

from switchyard.domain.audit import AuditEvent, JsonObject
from switchyard.domain.failover import (
    Decision,
    Intent,
    IntentRequest,
    LoopState,
    RejectIntent,
    StartFailover,
    Submitted,
    check_target,
)
from switchyard.domain.health import Observation
from switchyard.domain.region import Region, RegionRole
from switchyard.domain.saga import (
    FINISHED,
    FailoverRecord,
    FailoverState,
    Step,
    StepRecord,
    StepStatus,
)
from switchyard.errors import ConflictError, FencingError, NotFoundError, TransientError
from switchyard.ports.control import DrillRecord, LoopStatus


class InMemoryControlStore:
    def __init__(self, clock: Callable[[], datetime], regions: Sequence[Region]) -> None:
        self._clock = clock
        self._lock = threading.RLock()
        self.fail = False
        self._regions = {r.name: r for r in regions}
        self._observations: list[Observation] = []
        self._intents: dict[UUID, tuple[Intent, str, str, IntentRequest]] = {}
        self._keys: dict[str, UUID] = {}
        self._failovers: dict[UUID, FailoverRecord] = {}
        self._drills: dict[UUID, DrillRecord] = {}
        self._status = LoopStatus(LoopState.STEADY, "", "", None, None, None)
        self._max_token = 0
        self.events: list[AuditEvent] = []

    def _check(self) -> None:
        if self.fail:
            raise TransientError("database unavailable: in-memory store told to fail")

    def _fence(self, token: int) -> None:
        if token < self._max_token:
            raise FencingError(f"fencing token {token} is older than {self._max_token}")
        self._max_token = token

    # -- intents ------------------------------------------------------------------------
    def submit_intent(self, request: IntentRequest) -> Submitted:
        with self._lock:
            self._check()
            if request.idempotency_key is not None and request.idempotency_key in self._keys:
                first_id = self._keys[request.idempotency_key]
                _, _, _, first = self._intents[first_id]
                if first != request:
                    raise ConflictError(
                        "this idempotency key was used for a different request",
                        "idempotency_conflict",
                    )
                return Submitted(first_id, self._intents[first_id][0].drill_id, created=False)
            target = self._regions.get(request.target)
            if target is None:
                raise NotFoundError(f"region {request.target!r} is not recorded")
            check_target(target)
            if request.kind == "failover" or request.fault == "fence":
                busy = self._running_locked() is not None or any(
                    status == "pending" for _, status, _, _ in self._intents.values()
                )
                if busy:
                    raise ConflictError(
                        "a failover is already pending or running", "failover_in_progress"
                    )
            failover_id = uuid.uuid4()
            drill_id = None
            if request.kind == "drill":
                drill_id = uuid.uuid4()
                assert request.drill_kind is not None
                armed = request.fault == "external"
                self._drills[drill_id] = DrillRecord(
                    drill_id,
                    request.drill_kind,
                    request.fault,
                    request.target,
                    "running" if armed else "scheduled",
                    request.objectives,
                    self._clock(),
                )
                if armed:
                    return Submitted(failover_id, drill_id, created=True)
            intent = Intent(
                failover_id,
                request.kind,
                request.target,
                request.reason,
                request.actor,
                request.dry_run,
                drill_id,
                request.drill_kind,
            )
            self._intents[failover_id] = (intent, "pending", "", request)
            if request.idempotency_key is not None:
                self._keys[request.idempotency_key] = failover_id
            return Submitted(failover_id, drill_id, created=True)

    def drill(self, drill_id: UUID) -> DrillRecord:
        with self._lock:
            self._check()
            try:
                return self._drills[drill_id]
            except KeyError:
                raise NotFoundError(f"no drill {drill_id}") from None

    def armed_drill(self) -> DrillRecord | None:
        with self._lock:
            self._check()
            armed = [
                d
                for d in self._drills.values()
                if d.fault == "external" and d.status == "running" and d.failover_id is None
            ]
            return min(armed, key=lambda d: d.created_at) if armed else None

    def intent_status(self, intent_id: UUID) -> tuple[str, str]:
        with self._lock:
            self._check()
            if intent_id not in self._intents:
                raise NotFoundError(f"no failover or intent {intent_id}")
            _, status, reason, _ = self._intents[intent_id]
            return status, reason

    # -- observing ------------------------------------------------------------------------
    def record_observations(self, observations: Sequence[Observation]) -> None:
        with self._lock:
            self._check()
            self._observations.extend(observations)

    def observations_since(self, since: datetime) -> list[Observation]:
        with self._lock:
            self._check()
            return sorted((o for o in self._observations if o.at >= since), key=lambda o: o.at)

    def regions(self) -> list[Region]:
        with self._lock:
            self._check()
            return sorted(self._regions.values(), key=lambda r: r.name)

    def pending_intents(self) -> list[Intent]:
        with self._lock:
            self._check()
            return [i for i, status, _, _ in self._intents.values() if status == "pending"]

    def _running_locked(self) -> FailoverRecord | None:
        return next((f for f in self._failovers.values() if f.state not in FINISHED), None)

    def running_failover(self) -> FailoverRecord | None:
        with self._lock:
            self._check()
            return self._running_locked()

    def last_failover_finished_at(self) -> datetime | None:
        with self._lock:
            self._check()
            done = [
                f.finished_at
                for f in self._failovers.values()
                if f.state is FailoverState.SUCCEEDED and f.finished_at is not None
            ]
            return max(done) if done else None

    def loop_status(self) -> LoopStatus:
        with self._lock:
            self._check()
            return self._status

    def failover(self, failover_id: UUID) -> FailoverRecord:
        with self._lock:
            self._check()
            try:
                return self._failovers[failover_id]
            except KeyError:
                raise NotFoundError(f"no failover {failover_id}") from None

    # -- acting ---------------------------------------------------------------------------
    def record_decision(self, decision: Decision, *, holder: str, token: int, at: datetime) -> None:
        with self._lock:
            self._check()
            self._fence(token)
            changed = decision.code.value != self._status.code
            self._status = LoopStatus(
                decision.state, decision.code.value, decision.reason, at, holder, token
            )
            if changed:
                self._audit(holder, "decision", None, decision.reason, decision.code.value)

    def start_failover(
        self, action: StartFailover, *, steps: Sequence[str], holder: str, token: int, at: datetime
    ) -> FailoverRecord:
        with self._lock:
            self._check()
            self._fence(token)
            if self._running_locked() is not None:
                raise ConflictError("a failover is already running", "failover_in_progress")
            epoch = max(r.epoch for r in self._regions.values()) + 1
            failover_id = action.intent_id or uuid.uuid4()
            actor = holder
            if action.intent_id is not None:
                intent, _, _, request = self._intents[action.intent_id]
                actor = intent.actor
                self._intents[action.intent_id] = (intent, "running", "", request)
            record = FailoverRecord(
                id=failover_id,
                source=action.source,
                target=action.target,
                trigger=action.trigger,
                state=FailoverState.RUNNING,
                reason=action.reason,
                epoch=epoch,
                actor=actor,
                started_at=at,
                steps=tuple(
                    StepRecord(seq, Step(name), StepStatus.PENDING)
                    for seq, name in enumerate(steps)
                ),
                dry_run=action.dry_run,
                intent_id=action.intent_id,
                drill_id=action.drill_id,
                drill_kind=action.drill_kind,
            )
            self._failovers[failover_id] = record
            if action.drill_id is not None and action.drill_id in self._drills:
                self._drills[action.drill_id] = replace(
                    self._drills[action.drill_id], status="running", failover_id=failover_id
                )
            self._audit(
                actor,
                "failover.start",
                action.source,
                action.reason,
                action.trigger.value,
                after={"failover": str(failover_id), "target": action.target, "epoch": epoch},
            )
            return record

    def reject_intent(self, action: RejectIntent, *, holder: str, token: int) -> None:
        with self._lock:
            self._check()
            self._fence(token)
            intent, _, _, request = self._intents[action.intent_id]
            self._intents[action.intent_id] = (intent, "rejected", action.reason, request)
            if action.drill_id is not None and action.drill_id in self._drills:
                self._drills[action.drill_id] = replace(
                    self._drills[action.drill_id],
                    status="aborted",
                    report={"rejected": action.reason, "code": action.code.value},
                    finished_at=self._clock(),
                )
            self._audit(holder, "intent.reject", intent.target, action.reason, action.code.value)

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
        with self._lock:
            self._check()
            self._fence(token)
            record = self._failovers[failover_id]
            steps = list(record.steps)
            step = steps[seq]
            if status is StepStatus.RUNNING:
                step = replace(
                    step,
                    status=status,
                    reason=reason,
                    started_at=step.started_at or at,
                    finished_at=None,
                    attempts=step.attempts + 1,
                )
            else:
                step = replace(
                    step, status=status, reason=reason, finished_at=at, detail=detail or step.detail
                )
            steps[seq] = step
            record = replace(record, steps=tuple(steps))
            self._failovers[failover_id] = record
            return record

    def set_region(
        self, name: str, *, role: RegionRole, epoch: int, token: int, actor: str, reason: str
    ) -> Region:
        with self._lock:
            self._check()
            self._fence(token)
            before = self._regions[name]
            if epoch < before.epoch:
                raise FencingError(
                    f"region {name}: epoch {epoch} is older than the recorded {before.epoch}"
                )
            if role is RegionRole.PRIMARY and any(
                r.role is RegionRole.PRIMARY and r.name != name for r in self._regions.values()
            ):
                raise ConflictError("another region is primary", "one_primary")
            if before.role is role and before.epoch == epoch:
                return before
            after = Region(name, role, epoch, self._clock())
            self._regions[name] = after
            self._audit(
                actor,
                "region.set",
                name,
                reason,
                f"region_{role.value}",
                before={"role": before.role.value, "epoch": before.epoch},
                after={"role": role.value, "epoch": epoch},
            )
            return after

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
        with self._lock:
            self._check()
            self._fence(token)
            record = replace(self._failovers[failover_id], state=state, finished_at=at)
            record = replace(record, reason=record.reason)
            self._failovers[failover_id] = record
            if record.intent_id is not None:
                intent, _, _, request = self._intents[record.intent_id]
                status = "succeeded" if state is FailoverState.SUCCEEDED else "failed"
                self._intents[record.intent_id] = (intent, status, reason, request)
            if record.drill_id is not None and record.drill_id in self._drills:
                passed = bool(report and report.get("passed"))
                self._drills[record.drill_id] = replace(
                    self._drills[record.drill_id],
                    status="passed" if passed else "failed",
                    report=report,
                    finished_at=at,
                )
            self._audit(
                record.actor,
                "failover.finish",
                record.target,
                reason,
                state.value,
                after={"failover": str(failover_id), "state": state.value},
            )
            return record

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
    ) -> None:
        with self._lock:
            self._check()
            self._audit(actor, action, region, reason, code, before, after)

    def _audit(
        self,
        actor: str,
        action: str,
        region: str | None,
        reason: str,
        code: str,
        before: JsonObject | None = None,
        after: JsonObject | None = None,
    ) -> None:
        self.events.append(
            AuditEvent(
                len(self.events) + 1,
                self._clock(),
                actor,
                action,
                region,
                reason,
                code,
                before,
                after,
            )
        )
