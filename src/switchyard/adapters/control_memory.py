"""In-memory ControlStore twin for scenario tests: the same rules as the PostgreSQL store.

One lock makes every method atomic, as one transaction is in PostgreSQL: a method that
raises changes nothing, not even the recorded fencing token. ``clock`` plays the database
clock for the timestamps the store itself sets. ``fail`` makes every call raise
TransientError, to play an unreachable witness.

Beyond the port's invariants, both stores agree that (tests/contract/test_control_store.py):

- an armed ("external") drill stores no intent; the automatic failover it measures takes
  the drill's id, which ``Submitted.failover_id`` names, and its idempotency key is kept;
- a failover started for an intent takes the intent's id; the intent must be pending (else
  ConflictError ``intent_not_pending``), and so must an intent being rejected;
- a drill linked by ``start_failover`` must exist and be unlinked (``drill_unavailable``);
- ``LoopStatus.fencing_token`` is the highest token that has acted;
- an unknown region, intent, failover, step or drill is a NotFoundError;
- a time without a time zone is refused (ValueError).
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from datetime import datetime, timedelta
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
from switchyard.domain.health import Observation, last_sign_of_life
from switchyard.domain.region import Region, RegionRole, state_change_refusal
from switchyard.domain.saga import (
    FINISHED,
    DrillRecord,
    FailoverRecord,
    FailoverState,
    Step,
    StepRecord,
    StepStatus,
)
from switchyard.errors import ConflictError, FencingError, NotFoundError, TransientError
from switchyard.ports.control import LoopStatus


class InMemoryControlStore:
    def __init__(self, clock: Callable[[], datetime], regions: Sequence[Region]) -> None:
        self._clock = clock
        self._lock = threading.RLock()
        self.fail = False
        self._regions = {r.name: r for r in regions}
        self._observations: list[Observation] = []
        self._intents: dict[UUID, tuple[Intent, str, str, IntentRequest]] = {}
        self._keys: dict[str, tuple[Submitted, IntentRequest]] = {}
        self._failovers: dict[UUID, FailoverRecord] = {}
        self._drills: dict[UUID, DrillRecord] = {}
        self._status = LoopStatus(LoopState.STEADY, "", "", None, None, None)
        self._max_token = 0
        self.events: list[AuditEvent] = []

    def _check(self) -> None:
        if self.fail:
            raise TransientError("database unavailable: in-memory store told to fail")

    @contextmanager
    def _leader(self, token: int) -> Iterator[None]:
        """Hold the lock for a leader's mutation; record ``token`` only if the body succeeds."""
        with self._lock:
            self._check()
            if token < self._max_token:
                raise FencingError(f"fencing token {token} is older than {self._max_token}")
            yield
            self._max_token = token

    # -- intents ------------------------------------------------------------------------
    def submit_intent(self, request: IntentRequest) -> Submitted:
        with self._lock:
            self._check()
            _check_request(request)
            key = request.idempotency_key
            if key is not None and key in self._keys:
                submitted, first = self._keys[key]
                if first != request:
                    raise ConflictError(
                        "this idempotency key was used for a different request",
                        "idempotency_conflict",
                    )
                return replace(submitted, created=False)
            check_target(self._region_locked(request.target))
            drill_kind = request.drill_kind if request.kind == "drill" else None
            armed = drill_kind is not None and request.fault == "external"
            if not armed and self._busy_locked():
                raise ConflictError(
                    "a failover is already pending or running", "failover_in_progress"
                )
            drill_id = None
            if drill_kind is not None:
                drill_id = uuid.uuid4()
                self._drills[drill_id] = DrillRecord(
                    drill_id,
                    drill_kind,
                    request.fault,
                    request.target,
                    "running" if armed else "scheduled",
                    request.objectives,
                    self._clock(),
                )
            if armed and drill_id is not None:
                # The automatic failover this drill measures will take the drill's id.
                submitted = Submitted(drill_id, drill_id, created=True)
            else:
                intent_id = uuid.uuid4()
                intent = Intent(
                    intent_id,
                    request.kind,
                    request.target,
                    request.reason,
                    request.actor,
                    request.dry_run,
                    drill_id,
                    drill_kind,
                )
                self._intents[intent_id] = (intent, "pending", "", request)
                submitted = Submitted(intent_id, drill_id, created=True)
            if key is not None:
                self._keys[key] = (submitted, request)
            return submitted

    def _busy_locked(self) -> bool:
        return self._running_locked() is not None or any(
            status == "pending" for _, status, _, _ in self._intents.values()
        )

    def _region_locked(self, name: str) -> Region:
        try:
            return self._regions[name]
        except KeyError:
            raise NotFoundError(f"region {name!r} is not recorded in the control plane") from None

    def _check_drill_free_locked(self, drill_id: UUID) -> None:
        drill = self._drills.get(drill_id)
        if drill is None:
            raise NotFoundError(f"no drill {drill_id}")
        if drill.failover_id is not None or drill.status not in ("scheduled", "running"):
            raise ConflictError(
                f"drill {drill_id} is {drill.status} and cannot measure a new failover",
                "drill_unavailable",
            )

    def _pending_intent_locked(self, intent_id: UUID) -> tuple[Intent, IntentRequest]:
        if intent_id not in self._intents:
            raise NotFoundError(f"no intent {intent_id}")
        intent, status, _, request = self._intents[intent_id]
        if status != "pending":
            raise ConflictError(
                f"intent {intent_id} is {status}, not pending", "intent_not_pending"
            )
        return intent, request

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
        for o in observations:
            _aware(o.at)
        with self._lock:
            self._check()
            self._observations.extend(observations)

    def observations_since(self, since: datetime) -> list[Observation]:
        _aware(since)
        with self._lock:
            self._check()
            return sorted((o for o in self._observations if o.at >= since), key=lambda o: o.at)

    def last_sign_of_life(
        self, region: str, *, since: datetime, until: datetime, gap: timedelta
    ) -> datetime | None:
        _aware(since)
        _aware(until)
        with self._lock:
            self._check()
            return last_sign_of_life(self._observations, region, since=since, until=until, gap=gap)

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
                if f.state is FailoverState.SUCCEEDED
                and not f.dry_run
                and f.finished_at is not None
            ]
            return max(done) if done else None

    def loop_status(self) -> LoopStatus:
        with self._lock:
            self._check()
            return replace(self._status, fencing_token=self._max_token or None)

    def failover(self, failover_id: UUID) -> FailoverRecord:
        with self._lock:
            self._check()
            return self._failover_locked(failover_id)

    def _failover_locked(self, failover_id: UUID) -> FailoverRecord:
        try:
            return self._failovers[failover_id]
        except KeyError:
            raise NotFoundError(f"no failover {failover_id}") from None

    # -- acting ---------------------------------------------------------------------------
    def record_decision(self, decision: Decision, *, holder: str, token: int, at: datetime) -> None:
        _aware(at)
        with self._leader(token):
            changed = decision.code.value != self._status.code
            self._status = LoopStatus(
                decision.state, decision.code.value, decision.reason, at, holder, token
            )
            if changed:
                self._audit(holder, "decision", None, decision.reason, decision.code.value)

    def start_failover(
        self, action: StartFailover, *, steps: Sequence[str], holder: str, token: int, at: datetime
    ) -> FailoverRecord:
        _aware(at)
        with self._leader(token):
            if self._running_locked() is not None:
                raise ConflictError("a failover is already running", "failover_in_progress")
            self._region_locked(action.source)
            self._region_locked(action.target)
            epoch = max(r.epoch for r in self._regions.values()) + 1
            taken = None
            if action.intent_id is not None:
                taken = self._pending_intent_locked(action.intent_id)
            if action.drill_id is not None:
                self._check_drill_free_locked(action.drill_id)
            # An intent's failover takes the intent's id; an armed drill's, the drill's.
            failover_id = action.intent_id or action.drill_id or uuid.uuid4()
            actor = holder
            if taken is not None:
                intent, request = taken
                actor = intent.actor
                self._intents[intent.id] = (intent, "running", "", request)
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
            if action.drill_id is not None:
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
        with self._leader(token):
            intent, request = self._pending_intent_locked(action.intent_id)
            self._intents[action.intent_id] = (intent, "rejected", action.reason, request)
            # The intent's own drill: the one stored with it, whatever the action names.
            if intent.drill_id is not None:
                self._drills[intent.drill_id] = replace(
                    self._drills[intent.drill_id],
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
        _aware(at)
        with self._leader(token):
            record = self._failover_locked(failover_id)
            if not 0 <= seq < len(record.steps):
                raise NotFoundError(f"failover {failover_id} has no step {seq}")
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
        with self._leader(token):
            before = self._region_locked(name)
            why = state_change_refusal(
                name, before=(before.role, before.epoch), after=(role, epoch)
            )
            if why is not None:
                raise FencingError(why)
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
        _aware(at)
        with self._leader(token):
            # The failover keeps the reason it started for; how it ended goes to its intent,
            # its drill and the audit log.
            record = replace(self._failover_locked(failover_id), state=state, finished_at=at)
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


def _check_request(request: IntentRequest) -> None:
    if request.kind not in ("failover", "drill"):
        raise ValueError(f"intent kind must be failover or drill, got {request.kind!r}")
    if request.kind == "drill" and request.drill_kind is None:
        raise ValueError("a drill needs a drill kind (planned or unplanned)")
    if request.fault not in ("fence", "external"):
        raise ValueError(f"drill fault must be fence or external, got {request.fault!r}")


def _aware(value: datetime) -> datetime:
    """Refuse a naive time, as the PostgreSQL store does (it cannot store one faithfully)."""
    if value.tzinfo is None:
        raise ValueError(f"time {value.isoformat()} has no time zone")
    return value
