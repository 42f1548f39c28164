"""Fixtures for the port contract suites: one store per adapter, and a way to let time pass."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine

from support.db import migrated_engine
from switchyard.adapters.lease_memory import InMemoryLeaseStore
from switchyard.adapters.lease_postgres import PostgresLeaseStore
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
