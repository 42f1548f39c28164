"""Database helpers for the contract and integration conftests.

Fixtures stay in the conftest files; these are the generators they delegate to, so the
two folders build engines and sessions the same way.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from uuid import uuid4

from sqlalchemy import Engine, create_engine, make_url, text
from sqlalchemy.orm import Session

from switchyard.db.engine import make_engine
from switchyard.db.migrate import upgrade


def migrated_engine(url: str) -> Iterator[Engine]:
    """Migrate ``url`` to head once, then yield an engine on it; dispose afterwards."""
    upgrade(url)
    engine = make_engine(url)
    try:
        yield engine
    finally:
        engine.dispose()


def rollback_session(engine: Engine) -> Iterator[Session]:
    """A session inside an outer transaction that is rolled back, whatever the test did.

    ``create_savepoint`` turns the session's own commits and rollbacks into savepoints, so
    code under test behaves as in production while nothing it writes survives the test.
    """
    connection = engine.connect()
    outer = connection.begin()
    session = Session(bind=connection, join_transaction_mode="create_savepoint")
    try:
        yield session
    finally:
        session.close()
        outer.rollback()
        connection.close()


@contextmanager
def scratch_database(url: str) -> Iterator[str]:
    """Create a uniquely named empty database on ``url``'s server; yield its URL; drop it."""
    name = f"switchyard_scratch_{uuid4().hex[:12]}"
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
        try:
            yield make_url(url).set(database=name).render_as_string(hide_password=False)
        finally:
            with admin.connect() as connection:
                connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()
