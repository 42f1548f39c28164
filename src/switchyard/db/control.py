"""Control-store repository: the fence, intents, drills, observations, the loop's status.

Functions take the session as a keyword and never commit; ``PostgresControlStore`` runs each
port method in one unit of work (failovers and regions: ``switchyard.db.failovers``). The
rules are those of ``InMemoryControlStore``:

- A leader's mutation first passes ``fence``: one upsert of the ``controller_status`` row
  that raises the recorded token to ``token`` or refuses (``FencingError``). The row stays
  locked until commit, so leaders' mutations run one at a time, and a refused or failed
  mutation leaves the token where it was (the transaction rolls back).
- ``submit_intent`` and ``start_failover`` hold one transaction-scoped advisory lock
  (``lock_intents``), so the check "no failover pending or running" and the insert that
  follows cannot interleave; ``uq_failovers_one_active`` is the database's own backstop.
- Times the caller passes (``at``) are stored as given; the others are the database's clock.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

from sqlalchemy import (
    ColumnElement,
    DateTime,
    Interval,
    Null,
    Row,
    func,
    insert,
    literal,
    null,
    select,
    text,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.orm import Session

from switchyard.db.audit import append_audit
from switchyard.db.regions import get_region
from switchyard.db.tables import (
    ACTIVE_FAILOVER_STATES,
    controller_status,
    drills,
    failovers,
    intents,
    probe_observations,
)
from switchyard.domain.audit import JsonObject, JsonValue, freeze_object, thaw_json
from switchyard.domain.failover import (
    Decision,
    DrillKind,
    Intent,
    IntentRequest,
    LoopState,
    RejectIntent,
    Submitted,
    check_target,
)
from switchyard.domain.health import NO_ANSWER, Observation
from switchyard.domain.saga import DrillRecord
from switchyard.errors import ConflictError, FencingError, NotFoundError
from switchyard.ports.control import LoopStatus

LOOP = "loop"
# Arbitrary but fixed: every submitter and leader must contend for the same key.
INTENT_LOCK_KEY = 0x5357_4354_4C02
# A transaction stuck holding the fence or the intent lock must not stall the others for
# ever: waiting longer fails the call as transient and the loop sits this cycle out.
LOCK_TIMEOUT = "5s"


# -- fencing and locks ------------------------------------------------------------------


def fence(*, session: Session, token: int) -> None:
    """Record ``token`` as the highest that has acted, or refuse if a higher one has."""
    _bound_lock_waits(session)
    statement = (
        pg_insert(controller_status)
        .values(name=LOOP, fencing_token=token)
        .on_conflict_do_update(
            index_elements=[controller_status.c.name],
            set_={"fencing_token": token},
            where=controller_status.c.fencing_token <= token,
        )
        .returning(controller_status.c.name)
    )
    if session.execute(statement).first() is None:
        newest = session.scalar(select(controller_status.c.fencing_token).where(_loop()))
        raise FencingError(f"fencing token {token} is older than {newest}")


def lock_intents(*, session: Session) -> None:
    """Serialise with every other submitter and leader starting a failover (until commit)."""
    _bound_lock_waits(session)
    session.execute(select(func.pg_advisory_xact_lock(INTENT_LOCK_KEY)))


def _bound_lock_waits(session: Session) -> None:
    session.execute(text(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'"))


def _loop() -> ColumnElement[bool]:
    return controller_status.c.name == LOOP


# -- intents and drills ------------------------------------------------------------------


def submit_intent(*, session: Session, request: IntentRequest) -> Submitted:
    """Store ``request`` for the loop, under the rules of ``ControlStore.submit_intent``.

    An armed ("external") drill stores a drill and no intent; the failover it will measure
    takes the drill's id, which is what ``Submitted.failover_id`` names.
    """
    _check_request(request)
    lock_intents(session=session)
    payload = _request_json(request)
    if request.idempotency_key is not None:
        first = _submitted_before(session, request.idempotency_key, payload)
        if first is not None:
            return first
    check_target(get_region(session=session, name=request.target))
    drill_kind = request.drill_kind if request.kind == "drill" else None
    if drill_kind is not None and request.fault == "external":
        drill_id = _insert_drill(session, request, drill_kind, intent_id=None, payload=payload)
        return Submitted(drill_id, drill_id, created=True)
    if _busy(session):
        raise ConflictError("a failover is already pending or running", "failover_in_progress")
    intent_id = uuid4()
    session.execute(
        insert(intents).values(
            id=intent_id,
            kind=request.kind,
            payload=payload,
            actor=request.actor,
            idempotency_key=request.idempotency_key,
            target=request.target,
            reason=request.reason,
            dry_run=request.dry_run,
            # Read after the lock is taken, so "oldest first" is the order of submission.
            created_at=func.clock_timestamp(),
        )
    )
    if drill_kind is None:
        return Submitted(intent_id, None, created=True)
    drill_id = _insert_drill(session, request, drill_kind, intent_id=intent_id, payload=None)
    return Submitted(intent_id, drill_id, created=True)


def _insert_drill(
    session: Session,
    request: IntentRequest,
    kind: DrillKind,
    *,
    intent_id: UUID | None,
    payload: JsonObject | None,
) -> UUID:
    """A drill run by ``intent_id``, or, without one, armed for the next automatic failover
    (it then keeps the idempotency key and ``payload`` an intent would)."""
    drill_id = uuid4()
    session.execute(
        insert(drills).values(
            id=drill_id,
            kind=kind.value,
            fault=request.fault,
            target_region=request.target,
            objectives=as_jsonb(request.objectives),
            status="scheduled" if intent_id is not None else "running",
            reason=request.reason,
            actor=request.actor,
            intent_id=intent_id,
            idempotency_key=request.idempotency_key if intent_id is None else None,
            payload=as_jsonb(payload),
        )
    )
    return drill_id


def as_jsonb(value: JsonObject | None) -> JsonValue | Null:
    """A value for a JSONB column: None is SQL NULL (bound as is, it would be JSON null)."""
    return null() if value is None else thaw_json(value)


def _check_request(request: IntentRequest) -> None:
    if request.kind not in ("failover", "drill"):
        raise ValueError(f"intent kind must be failover or drill, got {request.kind!r}")
    if request.kind == "drill" and request.drill_kind is None:
        raise ValueError("a drill needs a drill kind (planned or unplanned)")
    if request.fault not in ("fence", "external"):
        raise ValueError(f"drill fault must be fence or external, got {request.fault!r}")


def _submitted_before(session: Session, key: str, payload: JsonObject) -> Submitted | None:
    by_intent = session.execute(
        select(intents.c.id, intents.c.payload, drills.c.id.label("drill_id"))
        .select_from(intents.outerjoin(drills, drills.c.intent_id == intents.c.id))
        .where(intents.c.idempotency_key == key)
    ).one_or_none()
    by_drill = session.execute(
        select(drills.c.id, drills.c.payload, drills.c.id.label("drill_id")).where(
            drills.c.idempotency_key == key
        )
    ).one_or_none()
    first = by_intent or by_drill
    if first is None:
        return None
    if first.payload != payload:
        raise ConflictError(
            "this idempotency key was used for a different request", "idempotency_conflict"
        )
    return Submitted(first.id, first.drill_id, created=False)


def _request_json(request: IntentRequest) -> dict[str, JsonValue]:
    return {
        "kind": request.kind,
        "target": request.target,
        "reason": request.reason,
        "actor": request.actor,
        "dry_run": request.dry_run,
        "idempotency_key": request.idempotency_key,
        "drill_kind": None if request.drill_kind is None else request.drill_kind.value,
        "fault": request.fault,
        "objectives": None if request.objectives is None else thaw_json(request.objectives),
    }


def _busy(session: Session) -> bool:
    active = select(failovers.c.id).where(failovers.c.state.in_(ACTIVE_FAILOVER_STATES))
    pending = select(intents.c.id).where(intents.c.status == "pending")
    return session.execute(active.union_all(pending).limit(1)).first() is not None


def pending_intents(*, session: Session) -> list[Intent]:
    """Intents the loop has not taken yet, oldest first."""
    rows = session.execute(
        select(intents, drills.c.id.label("drill_id"), drills.c.kind.label("drill_kind"))
        .select_from(intents.outerjoin(drills, drills.c.intent_id == intents.c.id))
        .where(intents.c.status == "pending")
        .order_by(intents.c.created_at, intents.c.id)
    ).all()
    return [
        Intent(
            id=row.id,
            kind=str(row.kind),
            target=str(row.target),
            reason=str(row.reason or ""),
            actor=str(row.actor),
            dry_run=bool(row.dry_run),
            drill_id=row.drill_id,
            drill_kind=None if row.drill_kind is None else DrillKind(row.drill_kind),
        )
        for row in rows
    ]


def intent_status(*, session: Session, intent_id: UUID) -> tuple[str, str]:
    row = session.execute(
        select(intents.c.status, intents.c.status_reason).where(intents.c.id == intent_id)
    ).one_or_none()
    if row is None:
        raise NotFoundError(f"no failover or intent {intent_id}")
    return str(row.status), str(row.status_reason)


def reject_intent(*, session: Session, action: RejectIntent, holder: str) -> None:
    """The pending intent is rejected with the action's reason; its drill is aborted."""
    _, target = take_pending_intent(session=session, intent_id=action.intent_id)
    set_intent_status(
        session=session, intent_id=action.intent_id, status="rejected", reason=action.reason
    )
    session.execute(
        update(drills)
        .where(drills.c.intent_id == action.intent_id)
        .values(
            status="aborted",
            report={"rejected": action.reason, "code": action.code.value},
            finished_at=func.now(),
        )
    )
    append_audit(
        session=session,
        actor=holder,
        action="intent.reject",
        region=target,
        reason=action.reason,
        code=action.code.value,
    )


def take_pending_intent(*, session: Session, intent_id: UUID) -> tuple[str, str]:
    """Lock the intent; its (actor, target) when it is pending, else ConflictError."""
    row = session.execute(
        select(intents.c.status, intents.c.actor, intents.c.target)
        .where(intents.c.id == intent_id)
        .with_for_update()
    ).one_or_none()
    if row is None:
        raise NotFoundError(f"no intent {intent_id}")
    if row.status != "pending":
        raise ConflictError(
            f"intent {intent_id} is {row.status}, not pending", "intent_not_pending"
        )
    return str(row.actor), str(row.target)


def set_intent_status(*, session: Session, intent_id: UUID, status: str, reason: str) -> None:
    session.execute(
        update(intents)
        .where(intents.c.id == intent_id)
        .values(status=status, status_reason=reason, updated_at=func.now())
    )


def take_drill(*, session: Session, drill_id: UUID) -> None:
    """Lock the drill; ConflictError unless it still waits for a failover to measure."""
    row = session.execute(
        select(drills.c.status, drills.c.failover_id)
        .where(drills.c.id == drill_id)
        .with_for_update()
    ).one_or_none()
    if row is None:
        raise NotFoundError(f"no drill {drill_id}")
    if row.failover_id is not None or row.status not in ("scheduled", "running"):
        raise ConflictError(
            f"drill {drill_id} is {row.status} and cannot measure a new failover",
            "drill_unavailable",
        )


def get_drill(*, session: Session, drill_id: UUID) -> DrillRecord:
    row = session.execute(select(drills).where(drills.c.id == drill_id)).one_or_none()
    if row is None:
        raise NotFoundError(f"no drill {drill_id}")
    return _drill(row)


def armed_drill(*, session: Session) -> DrillRecord | None:
    """The oldest "external" drill still waiting for a failover."""
    row = session.execute(
        select(drills)
        .where(drills.c.fault == "external", drills.c.status == "running")
        .where(drills.c.failover_id.is_(None))
        .order_by(drills.c.created_at, drills.c.id)
        .limit(1)
    ).one_or_none()
    return None if row is None else _drill(row)


def _drill(row: Row[Any]) -> DrillRecord:
    return DrillRecord(
        id=row.id,
        kind=DrillKind(row.kind),
        fault=str(row.fault),
        target=str(row.target_region),
        status=str(row.status),
        objectives=freeze_object(row.objectives),
        created_at=row.created_at,
        failover_id=row.failover_id,
        report=freeze_object(row.report),
        finished_at=row.finished_at,
    )


# -- observations ------------------------------------------------------------------------


def record_observations(*, session: Session, observations: Sequence[Observation]) -> None:
    if not observations:
        return
    session.execute(
        insert(probe_observations),
        [
            {
                "region": o.region,
                "vantage": o.vantage,
                "kind": o.kind,
                "ok": o.ok,
                "latency_ms": o.latency_ms,
                "reason": o.reason,
                "code": o.code,
                "observed_at": o.at,
                "role": o.role,
                "epoch": o.epoch,
            }
            for o in observations
        ],
    )


def last_sign_of_life(
    *, session: Session, region: str, since: datetime, until: datetime, gap: timedelta
) -> datetime | None:
    """``domain.health.last_sign_of_life`` in one query over the region's rounds in the span
    (answered or not, and the gap before each), not loading them."""
    o = probe_observations.c
    rounds = (
        select(
            o.observed_at.label("at"),
            func.bool_or(o.ok | o.code.not_in(sorted(NO_ANSWER))).label("answered"),
        )
        .where(o.region == region, o.observed_at >= since, o.observed_at <= until)
        .group_by(o.observed_at)
        .subquery()
    )
    start = literal(since, DateTime(timezone=True))
    step = select(
        rounds.c.at,
        rounds.c.answered,
        (
            rounds.c.at - func.coalesce(func.lag(rounds.c.at).over(order_by=rounds.c.at), start)
        ).label("after"),
    ).subquery()
    answered_at, gap_ended_at, last = session.execute(
        select(
            func.max(step.c.at).filter(step.c.answered),
            func.max(step.c.at).filter(step.c.after > literal(gap, Interval())),
            func.max(step.c.at),
        )
    ).one()
    candidates = [t for t in (answered_at, gap_ended_at) if t is not None]
    if until - (last or since) > gap:  # unobserved lately: it may be answering right now
        candidates.append(until)
    return max(candidates, default=None)


def observations_since(*, session: Session, since: datetime) -> list[Observation]:
    """Every observation at or after ``since``, oldest first (ties in insertion order)."""
    rows = session.execute(
        select(probe_observations)
        .where(probe_observations.c.observed_at >= since)
        .order_by(probe_observations.c.observed_at, probe_observations.c.id)
    ).all()
    return [
        Observation(
            vantage=str(row.vantage),
            region=str(row.region),
            kind=str(row.kind),
            ok=bool(row.ok),
            code=str(row.code),
            reason=str(row.reason),
            at=row.observed_at,
            latency_ms=row.latency_ms,
            role=row.role,
            epoch=row.epoch,
        )
        for row in rows
    ]


# -- the loop's status -------------------------------------------------------------------


def loop_status(*, session: Session) -> LoopStatus:
    row = session.execute(select(controller_status).where(_loop())).one_or_none()
    if row is None:
        return LoopStatus(LoopState.STEADY, "", "", None, None, None)
    return LoopStatus(
        state=LoopState(row.state),
        code=str(row.code),
        reason=str(row.reason),
        decided_at=row.decided_at,
        holder=row.holder,
        fencing_token=int(row.fencing_token),
    )


def record_decision(*, session: Session, decision: Decision, holder: str, at: datetime) -> None:
    """Remember the decision (after ``fence``); audit it when its code changed."""
    code = decision.code.value
    previous = session.scalar(select(controller_status.c.code).where(_loop()))
    session.execute(
        update(controller_status)
        .where(_loop())
        .values(
            state=decision.state.value,
            code=code,
            reason=decision.reason,
            decided_at=at,
            holder=holder,
        )
    )
    if previous != code:
        append_audit(
            session=session,
            actor=holder,
            action="decision",
            region=None,
            reason=decision.reason,
            code=code,
        )
