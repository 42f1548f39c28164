"""RegionDatabases contract: the twin and each region's real PostgreSQL record a region's role
the same way: never back in time, never two roles at one epoch, never from an older leader."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime

import pytest
from sqlalchemy import Engine, text

from switchyard.adapters.regions_memory import InMemoryRegionDatabases
from switchyard.adapters.regions_postgres import PostgresRegionDatabases
from switchyard.db import migrate
from switchyard.db.engine import make_engine, unit_of_work
from switchyard.db.region_state import seed_region_state
from switchyard.devenv.harness import Harness
from switchyard.domain.region import RegionRole
from switchyard.errors import FencingError
from switchyard.ports.regions import RegionDatabases

A = "region-a"
P, S, F = RegionRole.PRIMARY, RegionRole.STANDBY, RegionRole.FENCED
CONTRACT_REGION_DB = "switchyard_contract_region"


@pytest.fixture(scope="session")
def region_engine(harness: Harness) -> Iterator[Engine]:
    url = harness.region_dbs[A].fresh_database(CONTRACT_REGION_DB)
    migrate.upgrade(url, schema=migrate.REGION)
    engine = make_engine(url)
    yield engine
    engine.dispose()


@pytest.fixture(params=["memory", "postgres"])
def regions(request: pytest.FixtureRequest, fake_clock: Callable[[], datetime]) -> RegionDatabases:
    """region-a seeded (as ``switchyard migrate`` does) standby at epoch 1, token 0."""
    if request.param == "memory":
        twin = InMemoryRegionDatabases(fake_clock)
        twin.seed(A, S, 1)
        return twin
    engine: Engine = request.getfixturevalue("region_engine")
    with engine.begin() as connection:
        connection.execute(text("DELETE FROM region_state"))
    with unit_of_work(engine) as session:
        seed_region_state(session=session, region=A, role=S, epoch=1)
    return PostgresRegionDatabases({A: engine})


def recorded(regions: RegionDatabases) -> tuple[RegionRole, int, int]:
    state = regions.state(A)
    assert state is not None
    return state.role, state.epoch, state.fencing_token


def test_a_seeded_region_carries_no_leaders_token(regions: RegionDatabases) -> None:
    assert recorded(regions) == (S, 1, 0)


def test_a_newer_epoch_records_the_role_and_the_writers_token(regions: RegionDatabases) -> None:
    after = regions.set_state(A, P, 2, token=3)

    assert (after.role, after.epoch, after.fencing_token) == (P, 2, 3)
    assert recorded(regions) == (P, 2, 3)


def test_another_role_at_the_recorded_epoch_is_refused(regions: RegionDatabases) -> None:
    regions.set_state(A, S, 2, token=1)  # a switchover's fence

    with pytest.raises(FencingError, match="never two roles at one epoch"):
        regions.set_state(A, P, 2, token=1)  # the rolled-back switchover's old mistake

    assert recorded(regions) == (S, 2, 1)
    regions.set_state(A, P, 3, token=1)  # a rollback at a fresh epoch
    assert recorded(regions) == (P, 3, 1)


def test_an_older_epoch_is_refused(regions: RegionDatabases) -> None:
    regions.set_state(A, F, 4, token=1)

    with pytest.raises(FencingError, match="older than the recorded epoch 4"):
        regions.set_state(A, P, 3, token=1)

    assert recorded(regions) == (F, 4, 1)


def test_the_same_state_may_be_written_again_by_the_same_or_a_newer_leader(
    regions: RegionDatabases,
) -> None:
    regions.set_state(A, F, 2, token=1)
    regions.set_state(A, F, 2, token=1)  # a resumed step repeats its write
    assert recorded(regions) == (F, 2, 1)

    regions.set_state(A, F, 2, token=2)  # the next leader re-asserts it
    assert recorded(regions) == (F, 2, 2)


def test_a_deposed_leaders_write_is_refused_whatever_its_epoch(regions: RegionDatabases) -> None:
    regions.set_state(A, F, 2, token=5)

    with pytest.raises(FencingError, match="fencing token 4 is older than the token 5"):
        regions.set_state(A, P, 9, token=4)
    with pytest.raises(FencingError, match="older than the token 5"):
        regions.set_state(A, F, 2, token=4)

    assert recorded(regions) == (F, 2, 5)
