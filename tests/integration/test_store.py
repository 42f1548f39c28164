"""Region and audit repositories against the migrated control database."""

from __future__ import annotations

from types import MappingProxyType
from typing import Any
from uuid import uuid4

import pytest
from sqlalchemy import insert, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from switchyard.db.audit import append_audit, page_audit
from switchyard.db.regions import ensure_regions, get_region, list_regions
from switchyard.db.tables import regions
from switchyard.domain.audit import AuditEvent
from switchyard.domain.region import RegionRole
from switchyard.errors import ConflictError, NotFoundError

PRIMARY, STANDBY = RegionRole.PRIMARY, RegionRole.STANDBY


@pytest.fixture
def tag() -> str:
    """A unique prefix so assertions ignore rows other suites may have committed."""
    return f"t{uuid4().hex[:8]}"


def test_ensure_regions_records_topology_with_initial_epochs(db_session: Session, tag: str) -> None:
    created = ensure_regions(
        session=db_session, specs=[(f"{tag}-b", STANDBY), (f"{tag}-a", PRIMARY)]
    )

    assert [(r.name, r.role, r.epoch) for r in created] == [
        (f"{tag}-a", PRIMARY, 1),
        (f"{tag}-b", STANDBY, 0),
    ]
    assert get_region(session=db_session, name=f"{tag}-a") == created[0]
    listed = [r for r in list_regions(session=db_session) if r.name.startswith(tag)]
    assert listed == created


def test_ensure_regions_is_idempotent(db_session: Session, tag: str) -> None:
    specs = [(f"{tag}-a", PRIMARY), (f"{tag}-b", STANDBY)]
    first = ensure_regions(session=db_session, specs=specs)

    again = ensure_regions(session=db_session, specs=specs)

    assert again == []
    assert [r for r in list_regions(session=db_session) if r.name.startswith(tag)] == first


def test_ensure_regions_never_overwrites_role_or_epoch(db_session: Session, tag: str) -> None:
    ensure_regions(session=db_session, specs=[(f"{tag}-a", PRIMARY), (f"{tag}-b", STANDBY)])
    # What a failover leaves behind: a fenced old primary and a promoted standby.
    _set_region(db_session, f"{tag}-a", role="fenced", epoch=1)
    _set_region(db_session, f"{tag}-b", role="primary", epoch=2)

    ensure_regions(session=db_session, specs=[(f"{tag}-a", PRIMARY), (f"{tag}-b", STANDBY)])

    a, b = (get_region(session=db_session, name=f"{tag}-{x}") for x in "ab")
    assert (a.role, a.epoch) == (RegionRole.FENCED, 1)
    assert (b.role, b.epoch) == (PRIMARY, 2)


def test_ensure_regions_refuses_a_second_primary(db_session: Session, tag: str) -> None:
    ensure_regions(session=db_session, specs=[(f"{tag}-a", PRIMARY)])

    with pytest.raises(ConflictError, match="primary"):
        ensure_regions(session=db_session, specs=[(f"{tag}-c", PRIMARY)])


def test_ensure_regions_refuses_a_name_given_twice(db_session: Session, tag: str) -> None:
    with pytest.raises(ConflictError, match=f"{tag}-a"):
        ensure_regions(session=db_session, specs=[(f"{tag}-a", PRIMARY), (f"{tag}-a", STANDBY)])


def test_get_region_names_the_missing_region(db_session: Session, tag: str) -> None:
    with pytest.raises(NotFoundError, match=f"{tag}-nowhere"):
        get_region(session=db_session, name=f"{tag}-nowhere")


@pytest.mark.parametrize(
    ("role", "epoch"),
    [("standby", -1), ("leader", 0)],
    ids=["negative-epoch", "unknown-role"],
)
def test_schema_rejects_invalid_regions(
    db_session: Session, tag: str, role: str, epoch: int
) -> None:
    with pytest.raises(IntegrityError, match="violates check constraint"):
        db_session.execute(insert(regions).values(name=f"{tag}-x", role=role, epoch=epoch))


def test_append_audit_round_trips_json_read_only(db_session: Session, tag: str) -> None:
    before = {"role": "primary", "epoch": 3, "tags": ["x", {"deep": True}]}

    event = _audit(db_session, tag, before=before, after={"role": "fenced"})

    assert event.id > 0
    assert event.ts.tzinfo is not None
    assert (event.actor, event.action, event.region) == ("ctl-a", "fence", tag)
    assert event.before is not None
    assert isinstance(event.before, MappingProxyType)
    assert event.before["tags"] == ("x", {"deep": True})
    stored = page_audit(session=db_session, limit=1, region=tag).items[0]
    assert stored == event
    with pytest.raises(TypeError):
        event.before["epoch"] = 4  # type: ignore[index]


def test_audit_without_state_or_region(db_session: Session, tag: str) -> None:
    event = append_audit(
        session=db_session,
        actor=tag,
        action="start",
        region=None,
        reason="controller started",
        code="started",
    )

    assert (event.region, event.before, event.after) == (None, None, None)


def test_audit_pages_newest_first_with_a_cursor(db_session: Session, tag: str) -> None:
    ids = [_audit(db_session, tag, n=n).id for n in range(5)]

    first = page_audit(session=db_session, limit=2, region=tag)
    second = page_audit(session=db_session, limit=2, region=tag, before_id=first.next_before_id)
    last = page_audit(session=db_session, limit=2, region=tag, before_id=second.next_before_id)

    assert [e.id for e in first.items] == [ids[4], ids[3]]
    assert first.next_before_id == ids[3]
    assert [e.id for e in second.items] == [ids[2], ids[1]]
    assert [e.id for e in last.items] == [ids[0]]
    assert last.next_before_id is None


def test_audit_page_ends_without_cursor_when_exactly_full(db_session: Session, tag: str) -> None:
    for n in range(2):
        _audit(db_session, tag, n=n)

    page = page_audit(session=db_session, limit=2, region=tag)

    assert len(page.items) == 2
    assert page.next_before_id is None


def test_audit_unfiltered_page_returns_newest_across_regions(db_session: Session, tag: str) -> None:
    older = _audit(db_session, f"{tag}-a")
    newer = _audit(db_session, f"{tag}-b")

    page = page_audit(session=db_session, limit=2)

    assert [e.id for e in page.items] == [newer.id, older.id]


def test_audit_region_filter_excludes_other_regions(db_session: Session, tag: str) -> None:
    mine = _audit(db_session, f"{tag}-a")
    _audit(db_session, f"{tag}-b")

    page = page_audit(session=db_session, limit=10, region=f"{tag}-a")

    assert page.items == (mine,)


def test_audit_page_limit_must_be_positive(db_session: Session) -> None:
    with pytest.raises(ValueError, match="limit"):
        page_audit(session=db_session, limit=0)


def _audit(
    session: Session,
    region: str,
    *,
    n: int = 0,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
) -> AuditEvent:
    return append_audit(
        session=session,
        actor="ctl-a",
        action="fence",
        region=region,
        reason=f"fenced {region} (event {n})",
        code="fenced",
        before=before,
        after=after,
    )


def _set_region(session: Session, name: str, *, role: str, epoch: int) -> None:
    session.execute(update(regions).where(regions.c.name == name).values(role=role, epoch=epoch))
