"""Alembic environment for a region's schema (see ``switchyard.db.migrate``)."""

from __future__ import annotations

from switchyard.db.migrate import REGION, run_environment
from switchyard.db.region_tables import metadata

# Distinct from the control schema's key, so the two never wait on each other.
MIGRATION_LOCK_KEY = 0x5357_4354_4C02

run_environment(REGION, metadata, MIGRATION_LOCK_KEY)
