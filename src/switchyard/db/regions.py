"""Region repository: read regions and seed them from the topology.

Functions take the session as a keyword and never commit; the caller's unit of work does.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Row, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from switchyard.db.tables import regions
from switchyard.domain.region import Region, RegionRole, initial_epoch
from switchyard.errors import ConflictError, NotFoundError


def list_regions(*, session: Session) -> list[Region]:
    """Every recorded region, ordered by name."""
    rows = session.execute(select(regions).order_by(regions.c.name)).all()
    return [_region(row) for row in rows]


def get_region(*, session: Session, name: str) -> Region:
    """The region called ``name``; NotFoundError names it when absent."""
    row = session.execute(select(regions).where(regions.c.name == name)).one_or_none()
    if row is None:
        raise NotFoundError(f"region {name!r} is not recorded in the control plane")
    return _region(row)


def ensure_regions(*, session: Session, specs: Sequence[tuple[str, RegionRole]]) -> list[Region]:
    """Record the topology's regions that are missing; return those inserted, by name.

    A region already recorded keeps its role and epoch whatever ``specs`` says: after a
    failover the store, not the topology file, knows who is primary. New regions start at
    ``initial_epoch(role)`` (1 for a primary, 0 otherwise). Adding a primary while another
    region is primary raises ConflictError, as does naming a region twice.
    """
    names = [name for name, _ in specs]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise ConflictError(f"regions named more than once: {', '.join(duplicates)}")
    if not specs:
        return []
    values = [
        {"name": name, "role": role.value, "epoch": initial_epoch(role)} for name, role in specs
    ]
    # Only a name conflict is "already there"; the one-primary index must still refuse.
    statement = (
        insert(regions)
        .values(values)
        .on_conflict_do_nothing(index_elements=[regions.c.name])
        .returning(*regions.c)
    )
    try:
        rows = session.execute(statement).all()
    except IntegrityError as exc:
        raise ConflictError(
            "cannot record a new primary region while another region is primary"
        ) from exc
    return sorted((_region(row) for row in rows), key=lambda region: region.name)


def _region(row: Row[Any]) -> Region:
    return Region(
        name=str(row.name),
        role=RegionRole(row.role),
        epoch=int(row.epoch),
        updated_at=row.updated_at,
    )
