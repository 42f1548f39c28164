"""Fixtures for the port contract suites: one store per adapter, and a way to let time pass."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, text

from support.db import migrated_engine
from switchyard.adapters.control_memory import InMemoryControlStore
from switchyard.adapters.control_postgres import PostgresControlStore
from switchyard.adapters.lease_memory import InMemoryLeaseStore
from switchyard.adapters.lease_postgres import PostgresLeaseStore
from switchyard.db.audit import page_audit
from switchyard.db.engine import make_engine, unit_of_work
from switchyard.db.regions import ensure_regions
from switchyard.domain.audit import AuditEvent
from switchyard.domain.region import Region, RegionRole
from switchyard.ports.control import ControlStore
from switchyard.ports.lease import LeaseStore


class FakeClock:
    """A clock that moves only when told to."""

    def __init__(self) -> None:
        self.now = datetime(2025, 1, 1, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture(scope="session")
def control_engine(control_db_url: str) -> Iterator[Engine]:
    """An engine on the shared control database, upgraded to head once per session."""
    yield from migrated_engine(control_db_url)


@pytest.fixture
def fake_clock() -> FakeClock:
    return FakeClock()


@pytest.fixture(params=["memory", "postgres"])
def lease_store(request: pytest.FixtureRequest, fake_clock: FakeClock) -> LeaseStore:
    if request.param == "memory":
        return InMemoryLeaseStore(fake_clock)
    # Looked up lazily so the memory run needs no database.
    engine: Engine = request.getfixturevalue("control_engine")
    return PostgresLeaseStore(engine)


@pytest.fixture
def elapse(lease_store: LeaseStore, fake_clock: FakeClock) -> Callable[[float], None]:
    """Let ``seconds`` pass for the store: advance the fake clock, or really wait for the
    database clock (PostgreSQL cannot be told what time it is)."""
    if isinstance(lease_store, InMemoryLeaseStore):
        return fake_clock.advance
    return time.sleep


# -- ControlStore ---------------------------------------------------------------------------

CONTROL_TABLES = (
    "audit_events",
    "failover_steps",
    "drills",
    "failovers",
    "intents",
    "probe_observations",
    "controller_status",
    "regions",
)
# Nothing listens on port 1: connecting fails at once, as with a witness that is down.
UNREACHABLE_CONTROL_DB = "postgresql+psycopg://u@127.0.0.1:1/x"


@dataclass(frozen=True)
class ControlRig:
    """A ControlStore holding region-a (primary, epoch 1) and region-b (standby, epoch 0).

    ``events`` reads what the store has audited, oldest first; ``unreachable`` returns the
    same kind of store with its database gone.
    """

    store: ControlStore
    events: Callable[[], list[AuditEvent]]
    unreachable: Callable[[], ControlStore]


@pytest.fixture(params=["memory", "postgres"])
def control(request: pytest.FixtureRequest, fake_clock: FakeClock) -> Iterator[ControlRig]:
    if request.param == "memory":
        yield _memory_rig(fake_clock)
        return
    engine: Engine = request.getfixturevalue("control_engine")
    _empty_control_tables(engine)
    with unit_of_work(engine) as session:
        ensure_regions(
            session=session,
            specs=[("region-a", RegionRole.PRIMARY), ("region-b", RegionRole.STANDBY)],
        )
    dead: list[Engine] = []

    def unreachable() -> ControlStore:
        dead.append(make_engine(UNREACHABLE_CONTROL_DB, connect_timeout_seconds=1))
        return PostgresControlStore(dead[-1])

    try:
        yield ControlRig(PostgresControlStore(engine), lambda: _audited(engine), unreachable)
    finally:
        for gone in dead:
            gone.dispose()
        # Other suites share this database and record a primary region of their own.
        _empty_control_tables(engine)


def _memory_rig(clock: FakeClock) -> ControlRig:
    store = InMemoryControlStore(
        clock,
        [
            Region("region-a", RegionRole.PRIMARY, 1, clock()),
            Region("region-b", RegionRole.STANDBY, 0, clock()),
        ],
    )

    def unreachable() -> ControlStore:
        store.fail = True
        return store

    return ControlRig(store, lambda: list(store.events), unreachable)


def _empty_control_tables(engine: Engine) -> None:
    with engine.begin() as connection:
        connection.execute(text(f"TRUNCATE {', '.join(CONTROL_TABLES)} RESTART IDENTITY"))


def _audited(engine: Engine) -> list[AuditEvent]:
    with unit_of_work(engine) as session:
        return list(reversed(page_audit(session=session, limit=10_000).items))
