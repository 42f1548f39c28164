"""Alembic environment for the control-plane schema (see ``switchyard.db.migrate``)."""

from __future__ import annotations

from switchyard.db.migrate import CONTROL, run_environment
from switchyard.db.tables import metadata

# Arbitrary but fixed: every controller must contend for the same advisory lock key.
MIGRATION_LOCK_KEY = 0x5357_4354_4C01

run_environment(CONTROL, metadata, MIGRATION_LOCK_KEY)
