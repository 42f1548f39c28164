"""Readiness judged from plain facts: index, database, schema revision, recorded role."""

from __future__ import annotations

from datetime import UTC, datetime

from switchyard.db.region_state import RegionState
from switchyard.dialog.runtime import assess_readiness
from switchyard.domain.region import RegionRole

STANDBY = RegionState("region-b", RegionRole.STANDBY, 3, datetime(2026, 1, 1, tzinfo=UTC))


def test_a_standby_with_index_database_schema_and_role_is_ready() -> None:
    r = assess_readiness(
        251, 4, db_error=None, revision="0001", expected_revision="0001", state=STANDBY
    )

    assert r.ready
    assert (r.role, r.epoch, r.index_generation) == ("standby", 3, 4)


def test_each_missing_piece_is_named() -> None:
    down = assess_readiness(
        0, 1, db_error="OperationalError", revision=None, expected_revision="0001", state=None
    )
    behind = assess_readiness(
        9, 1, db_error=None, revision=None, expected_revision="0001", state=None
    )

    assert not down.ready
    assert down.checks == {"index": "index is empty", "database": "unreachable (OperationalError)"}
    assert not behind.ready
    assert behind.checks["schema"] == "schema at base, this build needs 0001"
    assert behind.checks["role"] == "no role recorded for this region"
