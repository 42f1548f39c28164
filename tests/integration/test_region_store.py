"""The region store's fencing on real PostgreSQL: a fence waits for writes in flight, writes
after it are refused, and concurrent turns in one session cannot both land."""

from __future__ import annotations

import time
import uuid

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from switchyard.adapters.lease_postgres import PostgresLeaseStore
from switchyard.adapters.regions_postgres import PostgresRegionDatabases
from switchyard.db.engine import unit_of_work
from switchyard.db.region_state import read_region_state, set_region_state
from switchyard.dialog import sessions
from switchyard.domain.region import RegionRole
from switchyard.errors import FencingError

REGION = "region-a"


def _exchange(session: Session, sid: uuid.UUID, *, is_new: bool, expected: int) -> None:
    sessions.record_exchange(
        session=session,
        region=REGION,
        session_id=sid,
        is_new=is_new,
        expected_turns=expected,
        state={},
        turns=[sessions.NewTurn("user", "hi", "message")],
    )


def test_a_fence_waits_for_a_write_in_flight_and_later_writes_are_refused(
    region_store: Engine,
) -> None:
    sid = uuid.uuid4()
    writer = Session(region_store)
    try:
        _exchange(writer, sid, is_new=True, expected=0)  # holds the share lock, uncommitted
        with region_store.connect() as fencer:
            fencer.execute(text("SET lock_timeout = '300ms'"))
            with pytest.raises(OperationalError, match="lock timeout"):
                fencer.execute(
                    text("UPDATE region_state SET role = 'fenced', epoch = 2 WHERE region = :r"),
                    {"r": REGION},
                )
            fencer.rollback()
        writer.commit()  # the write in flight lands ...
    finally:
        writer.close()

    with unit_of_work(region_store) as s:  # ... then the fence goes through at once
        set_region_state(session=s, region=REGION, role=RegionRole.FENCED, epoch=2, token=1)
    with (
        pytest.raises(sessions.RegionNotWritableError, match="fenced"),
        unit_of_work(region_store) as s,
    ):
        _exchange(s, sid, is_new=False, expected=1)
    with unit_of_work(region_store) as s:
        assert sessions.get_session(session=s, session_id=sid).turns == 1


def test_two_turns_computed_from_the_same_state_cannot_both_land(region_store: Engine) -> None:
    sid = uuid.uuid4()
    with unit_of_work(region_store) as s:
        _exchange(s, sid, is_new=True, expected=0)
    with unit_of_work(region_store) as s:
        _exchange(s, sid, is_new=False, expected=1)

    with pytest.raises(sessions.SessionChangedError), unit_of_work(region_store) as s:
        _exchange(s, sid, is_new=False, expected=1)

    with unit_of_work(region_store) as s:
        assert [t.seq for t in sessions.get_turns(session=s, session_id=sid)] == [1, 2]


def test_set_region_state_compares_and_sets_the_epoch(region_store: Engine) -> None:
    with unit_of_work(region_store) as s:
        set_region_state(session=s, region=REGION, role=RegionRole.STANDBY, epoch=2, token=1)
        set_region_state(session=s, region=REGION, role=RegionRole.PRIMARY, epoch=4, token=1)
    with pytest.raises(FencingError, match="older"), unit_of_work(region_store) as s:
        set_region_state(session=s, region=REGION, role=RegionRole.PRIMARY, epoch=3, token=1)
    with unit_of_work(region_store) as s:
        state = read_region_state(session=s, region=REGION)
    assert state is not None
    assert (state.role, state.epoch) == (RegionRole.PRIMARY, 4)


def test_an_unseeded_region_takes_no_writes(region_store: Engine) -> None:
    with region_store.begin() as connection:
        connection.execute(text("DELETE FROM region_state"))

    with (
        pytest.raises(sessions.RegionNotWritableError, match="no recorded role"),
        unit_of_work(region_store) as s,
    ):
        _exchange(s, uuid.uuid4(), is_new=True, expected=0)


def test_a_deposed_controllers_write_is_refused_by_the_region_database(
    region_store: Engine, migrated_engine: Engine
) -> None:
    """Two controllers in sequence, with the real lease store: the first one's lease runs out
    while it is paused; the second leads and fences; the first one's promotion, at a newer
    epoch even, is refused by the region's own PostgreSQL, which keeps the newer token."""
    leases = PostgresLeaseStore(migrated_engine)
    lease = f"controller-{uuid.uuid4().hex[:12]}"
    regions = PostgresRegionDatabases({REGION: region_store})
    first = leases.acquire(lease, "ctl-a", 0.3)
    assert first is not None
    regions.set_state(REGION, RegionRole.STANDBY, 2, token=first.fencing_token)

    time.sleep(0.5)  # ctl-a stalls (a GC pause, a partition) past its lease
    second = leases.acquire(lease, "ctl-b", 30)
    assert second is not None
    assert second.fencing_token > first.fencing_token
    regions.set_state(REGION, RegionRole.FENCED, 3, token=second.fencing_token)

    with pytest.raises(FencingError, match="older than the token"):
        regions.set_state(REGION, RegionRole.PRIMARY, 4, token=first.fencing_token)

    with region_store.connect() as connection:
        row = connection.execute(
            text("SELECT role, epoch, fencing_token FROM region_state WHERE region = :r"),
            {"r": REGION},
        ).one()
    assert tuple(row) == ("fenced", 3, second.fencing_token)
