"""A region's role and epoch as its own database records them (table ``region_state``).

The control plane writes this row to promote or fence a region; the dialog runtime reads it
inside each write transaction. Invariants, checked by ``set_region_state`` (``FencingError``)
in the statement itself, so a writer racing between its read and its write is refused too:

- The epoch recorded for a region never decreases, so a controller acting on an old view
  cannot undo a newer fence.
- A change of role carries a strictly newer epoch; the same epoch may only be rewritten with
  the same role. A region is never primary and something else at one epoch, so a switchover
  rolled back after its fence restores the source at a *new* epoch (see ``domain/saga.py``).
- The row keeps the fencing token of the leader that wrote it, and a write with an older
  token is refused: a deposed leader cannot change the region's role, whatever epoch it
  carries. The row seeded by ``switchyard migrate`` carries token 0 (no leader yet).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, func, or_, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from switchyard.db.region_tables import region_state
from switchyard.domain.region import RegionRole, state_change_refusal
from switchyard.errors import FencingError


@dataclass(frozen=True, slots=True)
class RegionState:
    region: str
    role: RegionRole
    epoch: int
    updated_at: datetime
    fencing_token: int = 0  # the lease token of the leader that wrote it; 0 when seeded

    @property
    def writable(self) -> bool:
        return self.role is RegionRole.PRIMARY


def read_region_state(*, session: Session, region: str, lock: bool = False) -> RegionState | None:
    """The recorded state, None if never seeded. ``lock`` takes a share lock on the row, which
    a fence's ``UPDATE`` waits for: hold it across a write to make the write and the role
    check atomic."""
    query = select(region_state).where(region_state.c.region == region)
    if lock:
        query = query.with_for_update(read=True)
    row = session.execute(query).one_or_none()
    if row is None:
        return None
    return RegionState(
        row.region, RegionRole(row.role), row.epoch, row.updated_at, row.fencing_token
    )


def seed_region_state(
    *, session: Session, region: str, role: RegionRole, epoch: int
) -> RegionState:
    """Record the initial state unless one exists; returns whatever is recorded afterwards.

    The seeded row carries fencing token 0: no leader has acted yet, so any leader's first
    write passes the token check."""
    session.execute(
        insert(region_state)
        .values(region=region, role=role.value, epoch=epoch)
        .on_conflict_do_nothing(index_elements=["region"])
    )
    state = read_region_state(session=session, region=region)
    assert state is not None  # just inserted, or already there
    return state


def set_region_state(
    *, session: Session, region: str, role: RegionRole, epoch: int, token: int
) -> RegionState:
    """Record ``role`` at ``epoch`` written by the leader holding fencing ``token``.

    Refuses (FencingError) an older token, an older epoch, or another role at the recorded
    epoch (see the module invariants). Rewriting what is recorded is a no-op.
    """
    current = read_region_state(session=session, region=region)
    if current is not None:
        _refuse(current, role, epoch, token)
        if (current.role, current.epoch, current.fencing_token) == (role, epoch, token):
            return current
    stmt = insert(region_state).values(
        region=region, role=role.value, epoch=epoch, fencing_token=token
    )
    stmt = stmt.on_conflict_do_update(
        index_elements=["region"],
        set_={"role": role.value, "epoch": epoch, "fencing_token": token, "updated_at": func.now()},
        # The same rules in the statement, for a writer racing between read and write.
        where=and_(
            region_state.c.fencing_token <= token,
            or_(
                region_state.c.epoch < epoch,
                and_(region_state.c.epoch == epoch, region_state.c.role == role.value),
            ),
        ),
    )
    if session.execute(stmt).rowcount == 0:  # type: ignore[attr-defined]
        raced = read_region_state(session=session, region=region)
        assert raced is not None  # the conflict means the row exists
        _refuse(raced, role, epoch, token)
        raise FencingError(f"region {region}: its state changed concurrently")
    state = read_region_state(session=session, region=region)
    assert state is not None
    return state


def _refuse(current: RegionState, role: RegionRole, epoch: int, token: int) -> None:
    why = state_change_refusal(
        current.region,
        before=(current.role, current.epoch),
        after=(role, epoch),
        before_token=current.fencing_token,
        token=token,
    )
    if why is not None:
        raise FencingError(why)
