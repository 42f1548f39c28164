"""A region's role and epoch as its own database records them (table ``region_state``).

The control plane writes this row to promote or fence a region; the dialog runtime reads it
inside each write transaction. Invariant: the epoch recorded for a region never decreases
(``set_region_state`` refuses with ``FencingError``), so a controller acting on an old view
cannot undo a newer fence.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from switchyard.db.region_tables import region_state
from switchyard.domain.region import RegionRole
from switchyard.errors import FencingError


@dataclass(frozen=True, slots=True)
class RegionState:
    region: str
    role: RegionRole
    epoch: int
    updated_at: datetime

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
    return RegionState(row.region, RegionRole(row.role), row.epoch, row.updated_at)


def seed_region_state(
    *, session: Session, region: str, role: RegionRole, epoch: int
) -> RegionState:
    """Record the initial state unless one exists; returns whatever is recorded afterwards."""
    session.execute(
        insert(region_state)
        .values(region=region, role=role.value, epoch=epoch)
        .on_conflict_do_nothing(index_elements=["region"])
    )
    state = read_region_state(session=session, region=region)
    assert state is not None  # just inserted, or already there
    return state


def set_region_state(*, session: Session, region: str, role: RegionRole, epoch: int) -> RegionState:
    """Record ``role`` at ``epoch``; refuses (FencingError) an epoch below the recorded one."""
    current = read_region_state(session=session, region=region, lock=False)
    if current is not None and epoch < current.epoch:
        raise FencingError(
            f"region {region}: epoch {epoch} is older than the recorded epoch {current.epoch}"
        )
    stmt = insert(region_state).values(region=region, role=role.value, epoch=epoch)
    stmt = stmt.on_conflict_do_update(
        index_elements=["region"],
        set_={"role": role.value, "epoch": epoch, "updated_at": func.now()},
        # Compare-and-set in the statement too, for a writer racing between read and write.
        where=region_state.c.epoch <= epoch,
    )
    if session.execute(stmt).rowcount == 0:  # type: ignore[attr-defined]
        raise FencingError(f"region {region}: a newer epoch was recorded concurrently")
    state = read_region_state(session=session, region=region)
    assert state is not None
    return state
