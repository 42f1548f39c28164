"""Both schemas' migrations: up, down and up again on a scratch database of their own."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import MetaData, create_engine, inspect

from support.db import scratch_database
from switchyard.db import migrate, region_tables, tables

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
REGION_TABLES = {"region_state", "dialog_sessions", "dialog_turns", "documents"}
SCHEMAS = [
    pytest.param(migrate.CONTROL, CONTROL_TABLES, tables.metadata, id="control"),
    pytest.param(migrate.REGION, REGION_TABLES, region_tables.metadata, id="region"),
]


@pytest.fixture
def scratch_url(control_db_url: str) -> Iterator[str]:
    # Never downgrade the shared database other tests are using.
    with scratch_database(control_db_url) as url:
        yield url


@pytest.mark.parametrize(("schema", "expected", "metadata"), SCHEMAS)
def test_upgrade_downgrade_upgrade(
    scratch_url: str, schema: migrate.Schema, expected: set[str], metadata: MetaData
) -> None:
    assert migrate.current_revision(scratch_url, schema=schema) is None
    assert not migrate.is_current(scratch_url, schema=schema)

    migrate.upgrade(scratch_url, schema=schema)
    assert migrate.current_revision(scratch_url, schema=schema) == migrate.head_revision(
        schema=schema
    )
    assert migrate.is_current(scratch_url, schema=schema)
    assert _tables(scratch_url) >= expected

    migrate.downgrade(scratch_url, "base", schema=schema)
    assert migrate.current_revision(scratch_url, schema=schema) is None
    assert not expected & _tables(scratch_url)

    migrate.upgrade(scratch_url, schema=schema)
    assert migrate.is_current(scratch_url, schema=schema)
    assert _tables(scratch_url) >= expected


@pytest.mark.parametrize(("schema", "expected", "metadata"), SCHEMAS)
def test_upgrade_twice_is_a_no_op(
    scratch_url: str, schema: migrate.Schema, expected: set[str], metadata: MetaData
) -> None:
    migrate.upgrade(scratch_url, schema=schema)
    migrate.upgrade(scratch_url, schema=schema)

    assert migrate.is_current(scratch_url, schema=schema)


def test_both_schemas_share_one_database_without_touching_each_other(scratch_url: str) -> None:
    migrate.upgrade(scratch_url, schema=migrate.REGION)
    assert migrate.current_revision(scratch_url, schema=migrate.CONTROL) is None

    migrate.upgrade(scratch_url, schema=migrate.CONTROL)
    migrate.downgrade(scratch_url, "base", schema=migrate.CONTROL)

    assert migrate.is_current(scratch_url, schema=migrate.REGION)
    assert _tables(scratch_url) >= REGION_TABLES


@pytest.mark.parametrize(("schema", "expected", "metadata"), SCHEMAS)
def test_table_definitions_match_the_migrated_schema(
    scratch_url: str, schema: migrate.Schema, expected: set[str], metadata: MetaData
) -> None:
    migrate.upgrade(scratch_url, schema=schema)
    engine = create_engine(scratch_url)
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(
                connection,
                opts={"version_table": schema.version_table, "compare_type": True},
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
