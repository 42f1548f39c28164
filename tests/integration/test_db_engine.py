"""Unit of work commits and rolls back; an unreachable database is a TransientError."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from uuid import uuid4

import pytest
from sqlalchemy import Engine, delete, select

from switchyard.adapters.lease_postgres import PostgresLeaseStore
from switchyard.db.audit import append_audit
from switchyard.db.engine import make_engine, unit_of_work
from switchyard.db.tables import audit_events
from switchyard.domain.lease import Lease
from switchyard.errors import TransientError

# Port 1 on loopback: nothing listens, so the connection is refused at once.
UNREACHABLE_URL = "postgresql+psycopg://postgres@127.0.0.1:1/switchyard"


@pytest.fixture
def actor(migrated_engine: Engine) -> Iterator[str]:
    """A unique actor whose committed audit rows are deleted after the test."""
    name = f"uow-{uuid4().hex[:8]}"
    yield name
    with migrated_engine.begin() as connection:
        connection.execute(delete(audit_events).where(audit_events.c.actor == name))


def test_unit_of_work_commits_on_success(migrated_engine: Engine, actor: str) -> None:
    with unit_of_work(migrated_engine) as session:
        append_audit(session=session, actor=actor, action="a", region=None, reason="r", code="c")

    assert _count(migrated_engine, actor) == 1


def test_unit_of_work_rolls_back_on_error(migrated_engine: Engine, actor: str) -> None:
    def fail_after_writing() -> None:
        with unit_of_work(migrated_engine) as session:
            append_audit(
                session=session, actor=actor, action="a", region=None, reason="r", code="c"
            )
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        fail_after_writing()

    assert _count(migrated_engine, actor) == 0


def test_unit_of_work_maps_unreachable_database_to_transient() -> None:
    engine = make_engine(UNREACHABLE_URL)
    try:
        with pytest.raises(TransientError), unit_of_work(engine) as session:
            session.execute(select(1))
    finally:
        engine.dispose()


def test_lease_store_maps_unreachable_database_to_transient() -> None:
    engine = make_engine(UNREACHABLE_URL)
    store = PostgresLeaseStore(engine)
    lease = Lease(name="leader", holder="a", fencing_token=1, expires_at=datetime.now(UTC))
    try:
        with pytest.raises(TransientError):
            store.acquire("leader", "a", 10)
        with pytest.raises(TransientError):
            store.check(lease)
    finally:
        engine.dispose()


def test_a_login_without_privileges_is_transient_not_a_crash(migrated_engine: Engine) -> None:
    """A fence revokes a runtime's lease: a session that logged in meanwhile keeps running
    without grants. Its refusals must read as 503 (TransientError), not as a server error."""
    role = f"uow_noprivs_{uuid4().hex[:8]}"
    password = uuid4().hex
    with migrated_engine.begin() as connection:
        connection.exec_driver_sql(f"CREATE ROLE {role} LOGIN PASSWORD '{password}'")
    url = migrated_engine.url.set(username=role, password=password)
    engine = make_engine(url.render_as_string(hide_password=False))
    try:
        with (
            pytest.raises(TransientError, match="lost its privileges"),
            unit_of_work(engine) as session,
        ):
            session.execute(select(audit_events.c.id).limit(1))
    finally:
        engine.dispose()
        with migrated_engine.begin() as connection:
            connection.exec_driver_sql(f"DROP ROLE {role}")


def _count(engine: Engine, actor: str) -> int:
    with engine.connect() as connection:
        rows = connection.execute(select(audit_events).where(audit_events.c.actor == actor))
        return len(rows.all())
