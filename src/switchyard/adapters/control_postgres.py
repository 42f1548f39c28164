"""PostgreSQL ControlStore: the witness database's control-plane tables (migrations/control).

Every method is one unit of work: it commits entirely or not at all, and an unreachable
database (or an exhausted pool, or a lock not granted within ``control.LOCK_TIMEOUT``)
raises TransientError. A leader's mutation passes the fence (``control.fence``) in the same
transaction as its writes, so a refused or failed call leaves the recorded token unchanged.
The rules live in ``switchyard.db.control`` and ``switchyard.db.failovers``;
``InMemoryControlStore`` is their twin.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta
from uuid import UUID

from sqlalchemy import Engine
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from sqlalchemy.orm import Session

from switchyard.db import control, failovers
from switchyard.db.audit import append_audit
from switchyard.db.engine import unit_of_work
from switchyard.db.regions import list_regions
from switchyard.domain.audit import JsonObject
from switchyard.domain.failover import (
    Decision,
    Intent,
    IntentRequest,
    RejectIntent,
    StartFailover,
    Submitted,
)
from switchyard.domain.health import Observation
from switchyard.domain.region import Region, RegionRole
from switchyard.domain.saga import DrillRecord, FailoverRecord, FailoverState, StepStatus
from switchyard.errors import TransientError
from switchyard.ports.control import LoopStatus


class PostgresControlStore:
    """A ControlStore on the control-plane PostgreSQL (see ``switchyard.ports.control``)."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    # -- intents --------------------------------------------------------------------------
    def submit_intent(self, request: IntentRequest) -> Submitted:
        with self._work() as session:
            return control.submit_intent(session=session, request=request)

    def drill(self, drill_id: UUID) -> DrillRecord:
        with self._work() as session:
            return control.get_drill(session=session, drill_id=drill_id)

    def armed_drill(self) -> DrillRecord | None:
        with self._work() as session:
            return control.armed_drill(session=session)

    def intent_status(self, intent_id: UUID) -> tuple[str, str]:
        with self._work() as session:
            return control.intent_status(session=session, intent_id=intent_id)

    # -- observing ------------------------------------------------------------------------
    def record_observations(self, observations: Sequence[Observation]) -> None:
        for o in observations:
            _aware(o.at)
        with self._work() as session:
            control.record_observations(session=session, observations=observations)

    def observations_since(self, since: datetime) -> list[Observation]:
        _aware(since)
        with self._work() as session:
            return control.observations_since(session=session, since=since)

    def last_sign_of_life(
        self, region: str, *, since: datetime, until: datetime, gap: timedelta
    ) -> datetime | None:
        _aware(since)
        _aware(until)
        with self._work() as session:
            return control.last_sign_of_life(
                session=session, region=region, since=since, until=until, gap=gap
            )

    def regions(self) -> list[Region]:
        with self._work() as session:
            return list_regions(session=session)

    def pending_intents(self) -> list[Intent]:
        with self._work() as session:
            return control.pending_intents(session=session)

    def running_failover(self) -> FailoverRecord | None:
        with self._work() as session:
            return failovers.running_failover(session=session)

    def last_failover_finished_at(self) -> datetime | None:
        with self._work() as session:
            return failovers.last_failover_finished_at(session=session)

    def loop_status(self) -> LoopStatus:
        with self._work() as session:
            return control.loop_status(session=session)

    def failover(self, failover_id: UUID) -> FailoverRecord:
        with self._work() as session:
            return failovers.get_failover(session=session, failover_id=failover_id)

    # -- acting ---------------------------------------------------------------------------
    def record_decision(self, decision: Decision, *, holder: str, token: int, at: datetime) -> None:
        _aware(at)
        with self._leader(token) as session:
            control.record_decision(session=session, decision=decision, holder=holder, at=at)

    def start_failover(
        self, action: StartFailover, *, steps: Sequence[str], holder: str, token: int, at: datetime
    ) -> FailoverRecord:
        _aware(at)
        with self._leader(token) as session:
            return failovers.start_failover(
                session=session, action=action, steps=steps, holder=holder, at=at
            )

    def reject_intent(self, action: RejectIntent, *, holder: str, token: int) -> None:
        with self._leader(token) as session:
            control.reject_intent(session=session, action=action, holder=holder)

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
        with self._leader(token) as session:
            return failovers.update_step(
                session=session,
                failover_id=failover_id,
                seq=seq,
                status=status,
                reason=reason,
                at=at,
                detail=detail,
            )

    def set_region(
        self, name: str, *, role: RegionRole, epoch: int, token: int, actor: str, reason: str
    ) -> Region:
        with self._leader(token) as session:
            return failovers.set_region(
                session=session, name=name, role=role, epoch=epoch, actor=actor, reason=reason
            )

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
        with self._leader(token) as session:
            return failovers.finish_failover(
                session=session,
                failover_id=failover_id,
                state=state,
                reason=reason,
                at=at,
                report=report,
            )

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
        with self._work() as session:
            append_audit(
                session=session,
                actor=actor,
                action=action,
                region=region,
                reason=reason,
                code=code,
                before=before,
                after=after,
            )

    # -- transactions ---------------------------------------------------------------------
    @contextmanager
    def _work(self) -> Iterator[Session]:
        try:
            with unit_of_work(self._engine) as session:
                yield session
        except PoolTimeoutError as exc:
            raise TransientError("control database pool exhausted") from exc

    @contextmanager
    def _leader(self, token: int) -> Iterator[Session]:
        """A unit of work that has passed the fence with ``token``."""
        with self._work() as session:
            control.fence(session=session, token=token)
            yield session


def _aware(value: datetime) -> datetime:
    """Refuse a naive time: PostgreSQL would read it in the session's time zone."""
    if value.tzinfo is None:
        raise ValueError(f"time {value.isoformat()} has no time zone")
    return value
