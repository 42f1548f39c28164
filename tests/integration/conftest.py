"""Integration fixtures on the control-plane PostgreSQL (migrated once per session)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from support.db import migrated_engine as _migrated_engine
from support.db import rollback_session


@pytest.fixture(scope="session")
def migrated_engine(control_db_url: str) -> Iterator[Engine]:
    """An engine on the shared control database, upgraded to head once per session."""
    yield from _migrated_engine(control_db_url)


@pytest.fixture
def db_session(migrated_engine: Engine) -> Iterator[Session]:
    """A session whose writes are rolled back after the test (savepoint per commit)."""
    yield from rollback_session(migrated_engine)
