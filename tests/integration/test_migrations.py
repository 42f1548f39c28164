"""Control-plane migrations: up, down and up again on a scratch database of their own."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, inspect

from support.db import scratch_database
from switchyard.db import migrate
from switchyard.db.tables import metadata

CONTROL_TABLES = {
    "regions",
    "leases",
    "probe_observations",
    "intents",
    "failovers",
    "failover_steps",
    "drills",
    "audit_events",
}


@pytest.fixture
def scratch_url(control_db_url: str) -> Iterator[str]:
    # Never downgrade the shared database other tests are using.
    with scratch_database(control_db_url) as url:
        yield url


def test_upgrade_downgrade_upgrade(scratch_url: str) -> None:
    assert migrate.current_revision(scratch_url) is None
    assert not migrate.is_current(scratch_url)

    migrate.upgrade(scratch_url)
    assert migrate.current_revision(scratch_url) == migrate.head_revision()
    assert migrate.is_current(scratch_url)
    assert _tables(scratch_url) >= CONTROL_TABLES

    migrate.downgrade(scratch_url, "base")
    assert migrate.current_revision(scratch_url) is None
    assert not CONTROL_TABLES & _tables(scratch_url)

    migrate.upgrade(scratch_url)
    assert migrate.is_current(scratch_url)
    assert _tables(scratch_url) >= CONTROL_TABLES


def test_upgrade_twice_is_a_no_op(scratch_url: str) -> None:
    migrate.upgrade(scratch_url)
    migrate.upgrade(scratch_url)

    assert migrate.is_current(scratch_url)


def test_table_definitions_match_the_migrated_schema(scratch_url: str) -> None:
    migrate.upgrade(scratch_url)
    engine = create_engine(scratch_url)
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(
                connection,
                opts={"version_table": migrate.VERSION_TABLE, "compare_type": True},
            )
            assert compare_metadata(context, metadata) == []
    finally:
        engine.dispose()


def _tables(url: str) -> set[str]:
    engine = create_engine(url)
    try:
        return set(inspect(engine).get_table_names())
    finally:
        engine.dispose()
