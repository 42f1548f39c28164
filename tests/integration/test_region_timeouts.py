"""The control plane's statements on a region's PostgreSQL end within a fraction of a saga step:
a fence blocked behind a write in flight, or a statement that runs long, fails with
``TransientError`` while the blocker still holds on, instead of hanging past the leader's lease.
The engines are built as the controller builds them (``bootstrap.control_region_stores``)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from switchyard.adapters.regions_postgres import PostgresRegionDatabases
from switchyard.adapters.secrets_memory import InMemorySecretStore
from switchyard.bootstrap import control_region_stores
from switchyard.controller.view import loop_settings
from switchyard.db.engine import unit_of_work
from switchyard.db.region_state import read_region_state
from switchyard.devenv.layout import repo_root
from switchyard.domain.region import RegionRole
from switchyard.errors import TransientError
from switchyard.topology import Topology, load_topology

STEP_SECONDS = 2.0
SECRET = "postgres/timeouts-test"
GUARD_SECONDS = 30.0  # only reached by an engine without timeouts: the test then fails


@pytest.fixture
def controller_engine(region_store: Engine, region_db_url: str) -> Iterator[Engine]:
    """region-a's test database reached as the controller reaches it, 2 s steps."""
    url = make_url(region_db_url)
    base = load_topology(repo_root() / "config" / "topology.example.yaml")
    a = base.region("region-a")
    db = a.database.model_copy(
        update={
            "host": url.host,
            "port": url.port,
            "name": url.database,
            "credentials_secret": SECRET,
        }
    )
    topology: Topology = base.model_copy(
        update={
            "regions": (a.model_copy(update={"database": db}), *base.regions[1:]),
            "failover": base.failover.model_copy(update={"step_timeout_seconds": STEP_SECONDS}),
        }
    )
    secrets = InMemorySecretStore()
    login = {"username": url.username or "", "password": url.password or ""}
    for path in (SECRET, base.region("region-b").database.credentials_secret):
        secrets.write(path, login)  # region-b's engine is built, never used
    engine = control_region_stores(topology, secrets)["region-a"].engine
    assert loop_settings(topology).region_statement_timeout_seconds < STEP_SECONDS
    yield engine
    engine.dispose()


@pytest.fixture
def regions(controller_engine: Engine) -> PostgresRegionDatabases:
    return PostgresRegionDatabases({"region-a": controller_engine})


def _in_thread(call: Callable[[], object]) -> tuple[threading.Thread, list[object]]:
    """Run ``call`` in a thread; its result or exception lands in the list."""
    outcome: list[object] = []

    def run() -> None:
        try:
            outcome.append(call())
        except Exception as exc:
            outcome.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, outcome


def test_a_fence_blocked_behind_a_write_in_flight_fails_within_its_timeout(
    region_store: Engine, regions: PostgresRegionDatabases
) -> None:
    writer = Session(region_store)
    try:
        # A runtime's write holds region_state FOR SHARE until it commits; this one never does
        # while the fence runs.
        read_region_state(session=writer, region="region-a", lock=True)
        thread, outcome = _in_thread(
            lambda: regions.set_state("region-a", RegionRole.FENCED, 2, token=1)
        )
        thread.join(GUARD_SECONDS)
        finished_while_blocked = not thread.is_alive()
    finally:
        writer.rollback()
        writer.close()
    thread.join(GUARD_SECONDS)
    assert finished_while_blocked, "the fence waited for the lock instead of timing out"
    [result] = outcome
    assert isinstance(result, TransientError), result
    assert "timed out" in str(result)
    assert "lock timeout" in str(result)
    # Nothing half-done: the row is as the writer left it, and the fence goes through now.
    assert regions.state("region-a").role is RegionRole.PRIMARY  # type: ignore[union-attr]
    assert regions.set_state("region-a", RegionRole.FENCED, 2, token=1).role is RegionRole.FENCED


def test_a_statement_that_runs_long_is_cancelled_as_transient(controller_engine: Engine) -> None:
    thread, outcome = _in_thread(lambda: _sleep(controller_engine, GUARD_SECONDS))
    thread.join(GUARD_SECONDS + 5)
    assert not thread.is_alive()
    [result] = outcome
    assert isinstance(result, TransientError), result
    assert "statement timeout" in str(result)


def _sleep(engine: Engine, seconds: float) -> None:
    with unit_of_work(engine) as session:
        session.execute(text("SELECT pg_sleep(:s)"), {"s": seconds})
