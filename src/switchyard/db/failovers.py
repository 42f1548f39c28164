"""Failover repository: failovers and their steps, and the regions' roles they change.

Functions take the session as a keyword and never commit. The caller has passed the fence
(``switchyard.db.control.fence``) in the same transaction; see that module for the rules.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any
from uuid import UUID, uuid4

from sqlalchemy import Row, Select, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from switchyard.db.audit import append_audit
from switchyard.db.control import (
    as_jsonb,
    lock_intents,
    set_intent_status,
    take_drill,
    take_pending_intent,
)
from switchyard.db.regions import get_region
from switchyard.db.tables import (
    ACTIVE_FAILOVER_STATES,
    drills,
    failover_steps,
    failovers,
    regions,
)
from switchyard.domain.audit import JsonObject, freeze_object, thaw_json
from switchyard.domain.failover import DrillKind, StartFailover, Trigger
from switchyard.domain.region import Region, RegionRole, state_change_refusal
from switchyard.domain.saga import FailoverRecord, FailoverState, Step, StepRecord, StepStatus
from switchyard.errors import ConflictError, FencingError, NotFoundError

# -- regions -----------------------------------------------------------------------------


def set_region(
    *, session: Session, name: str, role: RegionRole, epoch: int, actor: str, reason: str
) -> Region:
    """Compare-and-set a region's role and epoch; see ``ControlStore.set_region``."""
    before = session.execute(
        select(regions).where(regions.c.name == name).with_for_update()
    ).one_or_none()
    if before is None:
        raise NotFoundError(f"region {name!r} is not recorded in the control plane")
    why = state_change_refusal(
        name, before=(RegionRole(before.role), int(before.epoch)), after=(role, epoch)
    )
    if why is not None:
        raise FencingError(why)
    other_primary = select(regions.c.name).where(
        regions.c.role == RegionRole.PRIMARY.value, regions.c.name != name
    )
    if role is RegionRole.PRIMARY and session.execute(other_primary).first() is not None:
        raise ConflictError("another region is primary", "one_primary")
    if before.role == role.value and before.epoch == epoch:
        return _region(before)
    try:
        after = session.execute(
            update(regions)
            .where(regions.c.name == name)
            .values(role=role.value, epoch=epoch, updated_at=func.now())
            .returning(*regions.c)
        ).one()
    except IntegrityError as exc:
        if _constraint(exc) == "uq_regions_one_primary":
            raise ConflictError("another region is primary", "one_primary") from exc
        raise
    append_audit(
        session=session,
        actor=actor,
        action="region.set",
        region=name,
        reason=reason,
        code=f"region_{role.value}",
        before={"role": str(before.role), "epoch": int(before.epoch)},
        after={"role": role.value, "epoch": epoch},
    )
    return _region(after)


def _region(row: Row[Any]) -> Region:
    return Region(str(row.name), RegionRole(row.role), int(row.epoch), row.updated_at)


def _constraint(exc: IntegrityError) -> str | None:
    diag = getattr(exc.orig, "diag", None)
    name = getattr(diag, "constraint_name", None)
    return None if name is None else str(name)


# -- failovers ---------------------------------------------------------------------------


def start_failover(
    *, session: Session, action: StartFailover, steps: Sequence[str], holder: str, at: datetime
) -> FailoverRecord:
    """Create the failover at one more than the highest recorded epoch; see the port."""
    lock_intents(session=session)
    if session.execute(_active()).first() is not None:
        raise ConflictError("a failover is already running", "failover_in_progress")
    get_region(session=session, name=action.source)
    get_region(session=session, name=action.target)
    epoch = int(session.scalar(select(func.max(regions.c.epoch))) or 0) + 1
    actor = holder
    if action.intent_id is not None:
        actor, _ = take_pending_intent(session=session, intent_id=action.intent_id)
        set_intent_status(session=session, intent_id=action.intent_id, status="running", reason="")
    if action.drill_id is not None:
        take_drill(session=session, drill_id=action.drill_id)
    # An intent's failover takes the intent's id; an armed drill's, the drill's.
    failover_id = action.intent_id or action.drill_id or uuid4()
    try:
        session.execute(
            insert(failovers).values(
                id=failover_id,
                intent_id=action.intent_id,
                source_region=action.source,
                target_region=action.target,
                state=FailoverState.RUNNING.value,
                reason=action.reason,
                started_at=at,
                trigger=action.trigger.value,
                epoch=epoch,
                actor=actor,
                dry_run=action.dry_run,
                drill_id=action.drill_id,
                drill_kind=None if action.drill_kind is None else action.drill_kind.value,
            )
        )
    except IntegrityError as exc:
        if _constraint(exc) == "uq_failovers_one_active":
            raise ConflictError("a failover is already running", "failover_in_progress") from exc
        raise
    if steps:
        session.execute(
            insert(failover_steps),
            [
                {"failover_id": failover_id, "seq": seq, "name": name}
                for seq, name in enumerate(steps)
            ],
        )
    if action.drill_id is not None:
        session.execute(
            update(drills)
            .where(drills.c.id == action.drill_id)
            .values(status="running", failover_id=failover_id)
        )
    append_audit(
        session=session,
        actor=actor,
        action="failover.start",
        region=action.source,
        reason=action.reason,
        code=action.trigger.value,
        after={"failover": str(failover_id), "target": action.target, "epoch": epoch},
    )
    return get_failover(session=session, failover_id=failover_id)


def _active() -> Select[Any]:
    return select(failovers).where(failovers.c.state.in_(ACTIVE_FAILOVER_STATES))


def running_failover(*, session: Session) -> FailoverRecord | None:
    row = session.execute(_active()).first()
    return None if row is None else _failover(session, row)


def get_failover(*, session: Session, failover_id: UUID) -> FailoverRecord:
    row = session.execute(select(failovers).where(failovers.c.id == failover_id)).one_or_none()
    if row is None:
        raise NotFoundError(f"no failover {failover_id}")
    return _failover(session, row)


def last_failover_finished_at(*, session: Session) -> datetime | None:
    finished: datetime | None = session.scalar(
        select(func.max(failovers.c.finished_at)).where(
            failovers.c.state == FailoverState.SUCCEEDED.value,
            failovers.c.dry_run.is_(False),
        )
    )
    return finished


def update_step(
    *,
    session: Session,
    failover_id: UUID,
    seq: int,
    status: StepStatus,
    reason: str,
    at: datetime,
    detail: JsonObject | None,
) -> FailoverRecord:
    """A step starts (``RUNNING``: one more attempt, first start kept) or finishes."""
    where = (failover_steps.c.failover_id == failover_id) & (failover_steps.c.seq == seq)
    name = session.scalar(select(failover_steps.c.name).where(where).with_for_update())
    if name is None:
        raise NotFoundError(f"failover {failover_id} has no step {seq}")
    step = update(failover_steps).where(where)
    if status is StepStatus.RUNNING:
        step = step.values(
            status=status.value,
            reason=reason,
            started_at=func.coalesce(failover_steps.c.started_at, at),
            finished_at=None,
            attempts=failover_steps.c.attempts + 1,
        )
        session.execute(
            update(failovers).where(failovers.c.id == failover_id).values(current_step=name)
        )
    else:
        step = step.values(
            status=status.value,
            reason=reason,
            finished_at=at,
            detail=thaw_json(detail) if detail else failover_steps.c.detail,
        )
    session.execute(step)
    return get_failover(session=session, failover_id=failover_id)


def finish_failover(
    *,
    session: Session,
    failover_id: UUID,
    state: FailoverState,
    reason: str,
    at: datetime,
    report: JsonObject | None,
) -> FailoverRecord:
    """End the failover; its intent ends with ``reason``, its drill with ``report``."""
    row = session.execute(
        update(failovers)
        .where(failovers.c.id == failover_id)
        .values(state=state.value, finished_at=at)
        .returning(
            failovers.c.intent_id,
            failovers.c.drill_id,
            failovers.c.actor,
            failovers.c.target_region,
        )
    ).one_or_none()
    if row is None:
        raise NotFoundError(f"no failover {failover_id}")
    if row.intent_id is not None:
        outcome = "succeeded" if state is FailoverState.SUCCEEDED else "failed"
        set_intent_status(session=session, intent_id=row.intent_id, status=outcome, reason=reason)
    if row.drill_id is not None:
        passed = bool(report and report.get("passed"))
        session.execute(
            update(drills)
            .where(drills.c.id == row.drill_id)
            .values(
                status="passed" if passed else "failed",
                report=as_jsonb(report),
                finished_at=at,
                rto_seconds=_seconds(report, "rto_seconds"),
                rpo_seconds=_seconds(report, "rpo_seconds"),
            )
        )
    append_audit(
        session=session,
        actor=str(row.actor),
        action="failover.finish",
        region=str(row.target_region),
        reason=reason,
        code=state.value,
        after={"failover": str(failover_id), "state": state.value},
    )
    return get_failover(session=session, failover_id=failover_id)


def _seconds(report: JsonObject | None, key: str) -> float | None:
    """A figure of the report for its column; anything but a non-negative number is None
    (the report keeps it as given: a bad figure must not stop the failover from ending)."""
    value = None if report is None else report.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        return None
    return float(value)


def _failover(session: Session, row: Row[Any]) -> FailoverRecord:
    steps = session.execute(
        select(failover_steps)
        .where(failover_steps.c.failover_id == row.id)
        .order_by(failover_steps.c.seq)
    ).all()
    return FailoverRecord(
        id=row.id,
        source=str(row.source_region),
        target=str(row.target_region),
        trigger=Trigger(row.trigger),
        state=FailoverState(row.state),
        reason=str(row.reason),
        epoch=int(row.epoch),
        actor=str(row.actor),
        started_at=row.started_at,
        steps=tuple(
            StepRecord(
                seq=int(s.seq),
                name=Step(s.name),
                status=StepStatus(s.status),
                reason=str(s.reason),
                started_at=s.started_at,
                finished_at=s.finished_at,
                attempts=int(s.attempts),
                detail=freeze_object(s.detail),
            )
            for s in steps
        ),
        dry_run=bool(row.dry_run),
        intent_id=row.intent_id,
        drill_id=row.drill_id,
        drill_kind=None if row.drill_kind is None else DrillKind(row.drill_kind),
        finished_at=row.finished_at,
    )
