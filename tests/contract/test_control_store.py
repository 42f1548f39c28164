"""ControlStore contract: the in-memory twin and PostgreSQL keep the same rules.

Each test starts from region-a primary at epoch 1 and region-b standby at epoch 0.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from uuid import UUID, uuid4

import pytest

from switchyard.domain.failover import (
    Code,
    Decision,
    DrillKind,
    Intent,
    IntentRequest,
    LoopState,
    RejectIntent,
    StartFailover,
    Submitted,
    Trigger,
)
from switchyard.domain.health import Observation
from switchyard.domain.region import RegionRole
from switchyard.domain.saga import FailoverRecord, FailoverState, Step, StepStatus, steps_for
from switchyard.errors import ConflictError, FencingError, NotFoundError, TransientError
from switchyard.ports.control import ControlStore, LoopStatus

if TYPE_CHECKING:
    from contract.conftest import ControlRig

A, B = "region-a", "region-b"
T0 = datetime(2025, 1, 1, tzinfo=UTC)
GAP = timedelta(seconds=3)
STEPS = [step.value for step in steps_for(planned=False)]
PRIMARY, STANDBY, FENCED = RegionRole.PRIMARY, RegionRole.STANDBY, RegionRole.FENCED


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def failover_request(**changes: Any) -> IntentRequest:
    fields: dict[str, Any] = {
        "kind": "failover",
        "target": B,
        "reason": "move traffic for maintenance",
        "actor": "alice",
    }
    return IntentRequest(**(fields | changes))


def drill_request(fault: str, **changes: Any) -> IntentRequest:
    return failover_request(
        kind="drill", drill_kind=DrillKind.UNPLANNED, fault=fault, actor="bob", **changes
    )


def start_for(
    store: ControlStore,
    submitted: Submitted,
    *,
    trigger: Trigger = Trigger.MANUAL,
    dry_run: bool = False,
) -> FailoverRecord:
    """Start the failover of an intent, as the loop does when it takes it."""
    action = StartFailover(
        A,
        B,
        trigger,
        "operator asked",
        intent_id=submitted.failover_id,
        drill_id=submitted.drill_id,
        dry_run=dry_run,
    )
    return store.start_failover(action, steps=STEPS, holder="ctl-1", token=1, at=at(10))


def start_automatic(
    store: ControlStore, *, token: int = 1, drill_id: UUID | None = None
) -> FailoverRecord:
    action = StartFailover(
        A,
        B,
        Trigger.AUTOMATIC,
        "primary region-a is unhealthy",
        drill_id=drill_id,
        drill_kind=DrillKind.UNPLANNED if drill_id else None,
    )
    return store.start_failover(action, steps=STEPS, holder="ctl-1", token=token, at=at(10))


def finish(
    store: ControlStore,
    record: FailoverRecord,
    state: FailoverState = FailoverState.SUCCEEDED,
    *,
    report: dict[str, Any] | None = None,
) -> FailoverRecord:
    return store.finish_failover(
        record.id, state=state, reason="all steps done", at=at(60), token=1, report=report
    )


def decision(code: Code, state: LoopState = LoopState.STEADY) -> Decision:
    return Decision(state, (), f"the loop says {code.value}", code)


def roles(store: ControlStore) -> list[tuple[str, RegionRole, int]]:
    return [(r.name, r.role, r.epoch) for r in store.regions()]


# -- intents ------------------------------------------------------------------------------


def test_submit_stores_a_pending_intent(control: ControlRig) -> None:
    store = control.store
    submitted = store.submit_intent(failover_request(dry_run=True))

    assert submitted.created
    assert submitted.drill_id is None
    assert store.pending_intents() == [
        Intent(submitted.failover_id, "failover", B, "move traffic for maintenance", "alice", True)
    ]
    assert store.intent_status(submitted.failover_id) == ("pending", "")
    with pytest.raises(NotFoundError):
        store.failover(submitted.failover_id)


def test_same_idempotency_key_and_request_returns_the_first_submission(
    control: ControlRig,
) -> None:
    first = control.store.submit_intent(failover_request(idempotency_key="k-1"))

    again = control.store.submit_intent(failover_request(idempotency_key="k-1"))

    assert again == Submitted(first.failover_id, None, created=False)
    assert len(control.store.pending_intents()) == 1


def test_same_idempotency_key_with_another_request_conflicts(control: ControlRig) -> None:
    control.store.submit_intent(failover_request(idempotency_key="k-1"))

    with pytest.raises(ConflictError) as refused:
        control.store.submit_intent(failover_request(idempotency_key="k-1", reason="other"))

    assert refused.value.code == "idempotency_conflict"
    assert len(control.store.pending_intents()) == 1


def test_unknown_target_is_not_found(control: ControlRig) -> None:
    with pytest.raises(NotFoundError, match="region-z"):
        control.store.submit_intent(failover_request(target="region-z"))

    assert control.store.pending_intents() == []


@pytest.mark.parametrize(
    ("target", "role", "code"),
    [(A, PRIMARY, "target_is_primary"), (B, FENCED, "target_not_standby")],
)
def test_targets_that_cannot_be_promoted_are_refused(
    control: ControlRig, target: str, role: RegionRole, code: str
) -> None:
    if role is FENCED:
        control.store.set_region(B, role=FENCED, epoch=1, token=1, actor="t", reason="fenced")

    with pytest.raises(ConflictError) as refused:
        control.store.submit_intent(failover_request(target=target))

    assert refused.value.code == code
    assert control.store.pending_intents() == []


def test_second_intent_while_one_is_pending_is_refused(control: ControlRig) -> None:
    control.store.submit_intent(failover_request())

    with pytest.raises(ConflictError) as refused:
        control.store.submit_intent(failover_request(actor="carol"))

    assert refused.value.code == "failover_in_progress"
    assert [i.actor for i in control.store.pending_intents()] == ["alice"]


def test_intent_while_a_failover_runs_is_refused(control: ControlRig) -> None:
    start_automatic(control.store)

    with pytest.raises(ConflictError) as refused:
        control.store.submit_intent(failover_request())

    assert refused.value.code == "failover_in_progress"


def test_reject_intent_records_the_reason_and_aborts_its_drill(control: ControlRig) -> None:
    store = control.store
    submitted = store.submit_intent(drill_request("fence"))
    assert submitted.drill_id is not None

    store.reject_intent(
        RejectIntent(submitted.failover_id, Code.NO_PRIMARY, "no primary"), holder="ctl", token=1
    )

    assert store.intent_status(submitted.failover_id) == ("rejected", "no primary")
    assert store.pending_intents() == []
    drill = store.drill(submitted.drill_id)
    assert drill.status == "aborted"
    assert drill.finished_at is not None
    event = control.events()[-1]
    assert (event.action, event.region, event.code) == ("intent.reject", B, "no_primary")
    # A rejected intent is final: neither rejected again nor started.
    with pytest.raises(ConflictError) as again:
        store.reject_intent(
            RejectIntent(submitted.failover_id, Code.NO_PRIMARY, "again"), holder="ctl", token=1
        )
    assert again.value.code == "intent_not_pending"
    with pytest.raises(ConflictError) as started:
        start_for(store, submitted)
    assert started.value.code == "intent_not_pending"


# -- failovers ----------------------------------------------------------------------------


def test_start_failover_fixes_epoch_and_creates_pending_steps(control: ControlRig) -> None:
    store = control.store
    submitted = store.submit_intent(failover_request(dry_run=True))

    record = start_for(store, submitted, dry_run=True)

    assert record.id == submitted.failover_id == record.intent_id
    assert (record.source, record.target, record.trigger) == (A, B, Trigger.MANUAL)
    assert (record.state, record.epoch, record.actor) == (FailoverState.RUNNING, 2, "alice")
    assert record.dry_run
    assert record.started_at == at(10)
    assert [(s.seq, s.name.value, s.status) for s in record.steps] == [
        (seq, name, StepStatus.PENDING) for seq, name in enumerate(STEPS)
    ]
    assert store.intent_status(record.id) == ("running", "")
    assert store.pending_intents() == []
    assert store.running_failover() == record == store.failover(record.id)
    event = control.events()[-1]
    assert (event.action, event.actor, event.region, event.code) == (
        "failover.start",
        "alice",
        A,
        "manual",
    )
    assert event.after == {"failover": str(record.id), "target": B, "epoch": 2}


def test_start_failover_epoch_is_one_above_the_highest_recorded(control: ControlRig) -> None:
    control.store.set_region(B, role=STANDBY, epoch=7, token=1, actor="t", reason="resynced")

    record = start_automatic(control.store)

    assert record.epoch == 8
    assert record.intent_id is None
    assert record.actor == "ctl-1"


def test_second_start_while_one_runs_conflicts(control: ControlRig) -> None:
    first = start_automatic(control.store)

    with pytest.raises(ConflictError) as refused:
        start_automatic(control.store)

    assert refused.value.code == "failover_in_progress"
    assert control.store.running_failover() == first


def test_start_after_a_finished_failover_is_allowed(control: ControlRig) -> None:
    finish(control.store, start_automatic(control.store), FailoverState.ABORTED)

    second = start_automatic(control.store)

    assert control.store.running_failover() == second


def test_update_step_counts_attempts_and_keeps_the_first_start(control: ControlRig) -> None:
    store = control.store
    record = start_automatic(store)

    store.update_step(record.id, 0, status=StepStatus.RUNNING, reason="try", at=at(11), token=1)
    again = store.update_step(
        record.id, 0, status=StepStatus.RUNNING, reason="retry", at=at(12), token=1
    )

    step = again.steps[0]
    assert (step.status, step.attempts, step.reason) == (StepStatus.RUNNING, 2, "retry")
    assert step.started_at == at(11)
    assert step.finished_at is None

    done = store.update_step(
        record.id,
        0,
        status=StepStatus.SUCCEEDED,
        reason="ready",
        at=at(13),
        detail={"lag_seconds": 0.5},
        token=1,
    )

    step = done.steps[0]
    assert (step.status, step.attempts, step.finished_at) == (StepStatus.SUCCEEDED, 2, at(13))
    assert step.detail == {"lag_seconds": 0.5}
    assert done.next_step() == done.steps[1]
    assert done.steps[1].name is Step.FENCE_SOURCE
    assert store.failover(record.id) == done


@pytest.mark.parametrize(
    ("state", "intent_status", "counts_for_cooldown"),
    [
        (FailoverState.SUCCEEDED, "succeeded", True),
        (FailoverState.FAILED, "failed", False),
        (FailoverState.ABORTED, "failed", False),
    ],
)
def test_finish_failover_ends_its_intent(
    control: ControlRig, state: FailoverState, intent_status: str, counts_for_cooldown: bool
) -> None:
    store = control.store
    submitted = store.submit_intent(failover_request())
    record = start_for(store, submitted)

    done = finish(store, record, state)

    assert (done.state, done.finished_at) == (state, at(60))
    assert done.reason == record.reason  # the failover keeps why it started
    assert store.intent_status(record.id) == (intent_status, "all steps done")
    assert store.running_failover() is None
    assert store.last_failover_finished_at() == (at(60) if counts_for_cooldown else None)
    event = control.events()[-1]
    assert (event.action, event.region, event.code) == ("failover.finish", B, state.value)


def test_a_succeeded_dry_run_does_not_start_the_cooldown(control: ControlRig) -> None:
    store = control.store
    rehearsal = start_for(store, store.submit_intent(failover_request(dry_run=True)), dry_run=True)

    done = finish(store, rehearsal)

    assert (done.state, done.dry_run) == (FailoverState.SUCCEEDED, True)
    assert store.last_failover_finished_at() is None  # nothing moved: no cooldown
    real = start_for(store, store.submit_intent(failover_request()))
    finish(store, real)
    assert store.last_failover_finished_at() == at(60)


def test_unknown_failover_intent_and_step_are_not_found(control: ControlRig) -> None:
    store = control.store
    missing = uuid4()
    record = start_automatic(store)

    with pytest.raises(NotFoundError):
        store.failover(missing)
    with pytest.raises(NotFoundError):
        store.intent_status(missing)
    with pytest.raises(NotFoundError):
        store.drill(missing)
    with pytest.raises(NotFoundError):
        store.update_step(missing, 0, status=StepStatus.RUNNING, reason="", at=at(1), token=1)
    with pytest.raises(NotFoundError):
        store.update_step(
            record.id, len(STEPS), status=StepStatus.RUNNING, reason="", at=at(1), token=1
        )
    with pytest.raises(NotFoundError):
        store.finish_failover(missing, state=FailoverState.FAILED, reason="", at=at(1), token=1)
    with pytest.raises(NotFoundError):
        store.reject_intent(RejectIntent(missing, Code.NO_PRIMARY, "x"), holder="c", token=1)


# -- regions ------------------------------------------------------------------------------


def test_set_region_records_the_role_with_before_and_after(control: ControlRig) -> None:
    store = control.store

    fenced = store.set_region(A, role=FENCED, epoch=2, token=1, actor="ctl", reason="fence")
    promoted = store.set_region(B, role=PRIMARY, epoch=2, token=1, actor="ctl", reason="promote")

    assert (fenced.role, fenced.epoch, promoted.role, promoted.epoch) == (FENCED, 2, PRIMARY, 2)
    assert roles(store) == [(A, FENCED, 2), (B, PRIMARY, 2)]
    events = control.events()
    assert [(e.action, e.region, e.code, e.actor, e.reason) for e in events] == [
        ("region.set", A, "region_fenced", "ctl", "fence"),
        ("region.set", B, "region_primary", "ctl", "promote"),
    ]
    assert (events[0].before, events[0].after) == (
        {"role": "primary", "epoch": 1},
        {"role": "fenced", "epoch": 2},
    )


def test_set_region_never_lowers_an_epoch(control: ControlRig) -> None:
    with pytest.raises(FencingError):
        control.store.set_region(A, role=FENCED, epoch=0, token=1, actor="ctl", reason="late")

    assert roles(control.store) == [(A, PRIMARY, 1), (B, STANDBY, 0)]
    assert control.events() == []


def test_set_region_never_records_two_roles_at_one_epoch(control: ControlRig) -> None:
    control.store.set_region(A, role=STANDBY, epoch=2, token=1, actor="ctl", reason="fence")

    with pytest.raises(FencingError, match="never two roles at one epoch"):
        control.store.set_region(A, role=PRIMARY, epoch=2, token=1, actor="ctl", reason="undo")

    assert roles(control.store) == [(A, STANDBY, 2), (B, STANDBY, 0)]
    assert [e.reason for e in control.events()] == ["fence"]


def test_set_region_keeps_one_primary(control: ControlRig) -> None:
    with pytest.raises(ConflictError) as refused:
        control.store.set_region(B, role=PRIMARY, epoch=2, token=1, actor="ctl", reason="2nd")

    assert refused.value.code == "one_primary"
    assert roles(control.store) == [(A, PRIMARY, 1), (B, STANDBY, 0)]


def test_set_region_unchanged_is_a_no_op(control: ControlRig) -> None:
    before = control.store.regions()[0]

    same = control.store.set_region(A, role=PRIMARY, epoch=1, token=1, actor="ctl", reason="=")

    assert same == before
    assert control.events() == []


def test_set_region_of_an_unknown_region_is_not_found(control: ControlRig) -> None:
    with pytest.raises(NotFoundError, match="region-z"):
        control.store.set_region("region-z", role=FENCED, epoch=3, token=1, actor="c", reason="")


# -- fencing ------------------------------------------------------------------------------


def _stale_calls(
    store: ControlStore, pending: UUID, running: FailoverRecord
) -> dict[str, Callable[[int], object]]:
    """Every leader mutation, each otherwise valid, taking only the token."""
    return {
        "record_decision": lambda token: store.record_decision(
            decision(Code.SUSPECT, LoopState.SUSPECT), holder="old", token=token, at=at(20)
        ),
        "start_failover": lambda token: store.start_failover(
            StartFailover(B, A, Trigger.AUTOMATIC, "again"),
            steps=STEPS,
            holder="old",
            token=token,
            at=at(20),
        ),
        "reject_intent": lambda token: store.reject_intent(
            RejectIntent(pending, Code.FAILOVER_IN_PROGRESS, "busy"), holder="old", token=token
        ),
        "update_step": lambda token: store.update_step(
            running.id, 0, status=StepStatus.RUNNING, reason="old", at=at(20), token=token
        ),
        "set_region": lambda token: store.set_region(
            B, role=STANDBY, epoch=5, token=token, actor="old", reason="old"
        ),
        "finish_failover": lambda token: store.finish_failover(
            running.id, state=FailoverState.FAILED, reason="old", at=at(20), token=token
        ),
    }


@pytest.mark.parametrize(
    "call",
    [
        "record_decision",
        "start_failover",
        "reject_intent",
        "update_step",
        "set_region",
        "finish_failover",
    ],
)
def test_a_lower_token_is_refused_and_changes_nothing(control: ControlRig, call: str) -> None:
    store = control.store
    pending = store.submit_intent(failover_request()).failover_id
    # A leader with token 5 acts: it starts an automatic failover past the pending intent.
    running = start_automatic(store, token=5)
    before = (
        roles(store),
        store.pending_intents(),
        store.running_failover(),
        store.loop_status(),
        store.intent_status(pending),
        len(control.events()),
    )

    with pytest.raises(FencingError):
        _stale_calls(store, pending, running)[call](4)

    after = (
        roles(store),
        store.pending_intents(),
        store.running_failover(),
        store.loop_status(),
        store.intent_status(pending),
        len(control.events()),
    )
    assert after == before
    assert store.loop_status().fencing_token == 5


def test_the_same_and_a_higher_token_may_act(control: ControlRig) -> None:
    store = control.store
    store.record_decision(decision(Code.HEALTHY), holder="ctl-1", token=5, at=at(1))
    store.record_decision(decision(Code.HEALTHY), holder="ctl-1", token=5, at=at(2))

    store.record_decision(decision(Code.SUSPECT), holder="ctl-2", token=6, at=at(3))

    assert store.loop_status().fencing_token == 6
    with pytest.raises(FencingError):
        store.record_decision(decision(Code.HEALTHY), holder="ctl-1", token=5, at=at(4))


def test_a_call_that_fails_does_not_record_its_token(control: ControlRig) -> None:
    store = control.store
    start_automatic(store, token=5)

    with pytest.raises(ConflictError):
        start_automatic(store, token=9)  # one is running: the whole call is refused

    assert store.loop_status().fencing_token == 5
    store.record_decision(decision(Code.FAILOVER_IN_PROGRESS), holder="c", token=6, at=at(1))
    assert store.loop_status().fencing_token == 6


# -- the loop's status --------------------------------------------------------------------


def test_loop_status_starts_steady_and_unknown(control: ControlRig) -> None:
    assert control.store.loop_status() == LoopStatus(LoopState.STEADY, "", "", None, None, None)


def test_record_decision_audits_only_when_the_code_changes(control: ControlRig) -> None:
    store = control.store

    store.record_decision(decision(Code.HEALTHY), holder="ctl-1", token=3, at=at(1))
    store.record_decision(decision(Code.HEALTHY), holder="ctl-1", token=3, at=at(2))
    store.record_decision(
        decision(Code.SUSPECT, LoopState.SUSPECT), holder="ctl-1", token=3, at=at(3)
    )

    assert [(e.action, e.code, e.actor, e.region) for e in control.events()] == [
        ("decision", "healthy", "ctl-1", None),
        ("decision", "suspect", "ctl-1", None),
    ]
    assert store.loop_status() == LoopStatus(
        LoopState.SUSPECT, "suspect", "the loop says suspect", at(3), "ctl-1", 3
    )


def test_audit_appends_an_event(control: ControlRig) -> None:
    control.store.audit(
        actor="ctl",
        action="fence.reassert",
        region=A,
        reason="region-a still says primary",
        code="fence_reasserted",
        before={"role": "primary"},
        after={"role": "fenced", "epoch": 2},
    )

    (event,) = control.events()
    assert (event.actor, event.action, event.region, event.code) == (
        "ctl",
        "fence.reassert",
        A,
        "fence_reasserted",
    )
    assert (event.before, event.after) == ({"role": "primary"}, {"role": "fenced", "epoch": 2})


# -- observations -------------------------------------------------------------------------


def test_observations_round_trip_oldest_first(control: ControlRig) -> None:
    store = control.store
    seen = [
        Observation("v2", A, "http", False, "timeout", "no answer in 2 s", at(2)),
        Observation("v1", A, "http", True, "ok", "200", at(1), latency_ms=12.5),
        Observation("v1", A, "postgres", True, "ok", "primary", at(2), 3.0, "primary", 1),
        Observation("v1", B, "readiness", True, "ok", "ready", at(0)),
    ]

    store.record_observations(seen)
    store.record_observations([])

    assert store.observations_since(at(1)) == [seen[1], seen[0], seen[2]]
    assert store.observations_since(at(0)) == [seen[3], seen[1], seen[0], seen[2]]
    assert store.observations_since(at(3)) == []


def test_the_last_sign_of_life_of_a_region(control: ControlRig) -> None:
    store = control.store
    silent = [Observation("v1", A, "http", False, "timeout", "no answer", at(t)) for t in range(20)]
    store.record_observations(
        [
            *silent,
            Observation("v1", A, "http", True, "ok", "200", at(1)),
            Observation("v2", A, "readiness", False, "http_status", "503", at(2)),  # answered
            Observation("v2", A, "tcp", False, "connect_refused", "refused", at(4)),
            Observation("v1", B, "http", True, "ok", "200", at(5)),
            # region-c: observed at 0..4 and 15..19; nothing recorded in between.
            *(Observation("v1", "region-c", "http", False, "timeout", "", at(t)) for t in range(5)),
            *(
                Observation("v1", "region-c", "http", False, "timeout", "", at(t))
                for t in range(15, 20)
            ),
        ]
    )

    def alive(region: str, since: float, until: float = 19) -> datetime | None:
        return store.last_sign_of_life(region, since=at(since), until=at(until), gap=GAP)

    assert alive(A, 0) == at(2)
    assert alive(A, 3) is None  # observed every second since, never answering
    assert alive(B, 0) == at(19)  # answered at 5, then unobserved: may answer now
    assert alive(B, 5, until=6) == at(5)
    assert alive("region-c", 0) == at(15)  # the unobserved span ended at 15
    assert alive("region-c", 15) is None
    assert alive("region-z", 0) == at(19)  # never observed: nothing says it is silent


def test_naive_times_are_refused(control: ControlRig) -> None:
    naive = datetime(2025, 1, 1)  # no tzinfo: the point of the test

    with pytest.raises(ValueError, match="time zone"):
        control.store.record_observations([Observation("v1", A, "http", True, "ok", "", naive)])
    with pytest.raises(ValueError, match="time zone"):
        control.store.record_decision(decision(Code.HEALTHY), holder="c", token=1, at=naive)

    assert control.store.observations_since(at(-3600)) == []
    assert control.store.loop_status().fencing_token is None


# -- drills -------------------------------------------------------------------------------


def test_external_drill_is_armed_and_measures_the_next_automatic_failover(
    control: ControlRig,
) -> None:
    store = control.store
    objectives = {"rto_seconds": 60, "rpo_seconds": 0}
    submitted = store.submit_intent(
        drill_request("external", objectives=objectives, idempotency_key="d-1")
    )

    assert submitted.drill_id is not None
    # The failover it will measure takes the drill's id.
    assert submitted.failover_id == submitted.drill_id
    assert store.pending_intents() == []
    armed = store.armed_drill()
    assert armed is not None
    assert (armed.id, armed.kind, armed.fault, armed.target, armed.status) == (
        submitted.drill_id,
        DrillKind.UNPLANNED,
        "external",
        B,
        "running",
    )
    assert armed.objectives == objectives
    assert armed.failover_id is None
    assert store.drill(armed.id) == armed
    assert store.submit_intent(
        drill_request("external", objectives=objectives, idempotency_key="d-1")
    ) == Submitted(submitted.failover_id, submitted.drill_id, created=False)

    record = start_automatic(store, drill_id=armed.id)

    assert record.id == submitted.failover_id
    assert (record.drill_id, record.drill_kind) == (armed.id, DrillKind.UNPLANNED)
    assert store.armed_drill() is None
    assert store.drill(armed.id).failover_id == record.id
    finish(store, record)
    with pytest.raises(ConflictError) as taken:
        start_automatic(store, drill_id=armed.id)
    assert taken.value.code == "drill_unavailable"


def test_external_drill_may_be_armed_while_a_failover_runs(control: ControlRig) -> None:
    start_automatic(control.store)

    submitted = control.store.submit_intent(drill_request("external"))

    assert submitted.created


@pytest.mark.parametrize(
    ("report", "status"),
    [
        ({"passed": True, "rto_seconds": 41.5, "rpo_seconds": 0.0}, "passed"),
        ({"passed": False, "rto_seconds": 95.0, "rpo_seconds": None}, "failed"),
        (None, "failed"),
    ],
)
def test_finished_drill_keeps_its_report(
    control: ControlRig, report: dict[str, Any] | None, status: str
) -> None:
    store = control.store
    submitted = store.submit_intent(drill_request("fence", objectives={"rto_seconds": 60}))
    assert submitted.drill_id is not None
    (intent,) = store.pending_intents()
    assert (intent.kind, intent.drill_id, intent.drill_kind) == (
        "drill",
        submitted.drill_id,
        DrillKind.UNPLANNED,
    )
    assert store.drill(submitted.drill_id).status == "scheduled"
    record = start_for(store, submitted, trigger=Trigger.DRILL)
    assert store.drill(submitted.drill_id).status == "running"

    finish(store, record, report=report)

    drill = store.drill(submitted.drill_id)
    assert (drill.status, drill.failover_id, drill.finished_at) == (status, record.id, at(60))
    assert drill.report == report
    assert store.intent_status(submitted.failover_id) == ("succeeded", "all steps done")


def test_start_with_an_unknown_drill_is_not_found(control: ControlRig) -> None:
    with pytest.raises(NotFoundError):
        start_automatic(control.store, drill_id=uuid4())

    assert control.store.running_failover() is None


# -- races --------------------------------------------------------------------------------


def race(contenders: int, attempt: Callable[[int], object]) -> tuple[list[object], list[str]]:
    """Run ``attempt(i)`` in ``contenders`` threads at once; (results, codes of refusals)."""
    start = threading.Barrier(contenders)
    results: list[object] = []
    codes: list[str] = []
    errors: list[BaseException] = []

    def contend(i: int) -> None:
        try:
            start.wait()
            results.append(attempt(i))
        except (ConflictError, FencingError) as exc:
            codes.append(exc.code)
        except BaseException as exc:  # surfaced below; a thread cannot fail the test itself
            errors.append(exc)

    threads = [threading.Thread(target=contend, args=(i,)) for i in range(contenders)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    return results, codes


def test_concurrent_submitters_store_exactly_one_intent(control: ControlRig) -> None:
    results, codes = race(8, lambda i: control.store.submit_intent(failover_request(actor=f"u{i}")))

    assert len(results) == 1
    assert codes == ["failover_in_progress"] * 7
    assert len(control.store.pending_intents()) == 1


def test_concurrent_leaders_start_exactly_one_failover(control: ControlRig) -> None:
    # Two leaders (tokens 1 and 2), four attempts each: whichever order the database sees,
    # one failover starts; the others are refused by the fence or find it running.
    results, codes = race(8, lambda i: start_automatic(control.store, token=1 + i % 2))

    assert len(results) == 1
    assert len(codes) == 7
    assert set(codes) <= {"failover_in_progress", "fenced"}
    assert control.store.running_failover() == results[0]


# -- an unreachable store -----------------------------------------------------------------


def test_unreachable_store_is_transient(control: ControlRig) -> None:
    store = control.unreachable()

    with pytest.raises(TransientError):
        store.regions()
    with pytest.raises(TransientError):
        store.submit_intent(failover_request())
    with pytest.raises(TransientError):
        store.record_decision(decision(Code.HEALTHY), holder="ctl", token=1, at=at(1))
