"""PostgreSQL LeaseStore: one row per lease in the witness database's ``leases`` table.

Each operation is a single SQL statement in its own short transaction. The lease must be
durable on its own, independent of whatever business transaction the holder has open, so
this adapter commits, unlike repository functions.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, Row, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

from switchyard.db.engine import unavailable
from switchyard.domain.lease import Lease, check_ttl, verify
from switchyard.errors import TransientError

# Compare-and-set in one statement. The clock is read once (the ``clock`` subquery) and
# travels as ``excluded.acquired_at``, so the WHERE and CASE judge expiry at the same instant.
# A live row held by someone else fails the WHERE, nothing is updated and no row returns.
# Concurrent inserts of a new name serialise on the primary key: the loser sees the
# winner's live row and is refused.
_ACQUIRE = text(
    """
    INSERT INTO leases AS l (name, holder, fencing_token, expires_at, acquired_at)
    SELECT :name, :holder, 1, clock.now + make_interval(secs => :ttl), clock.now
    FROM (SELECT clock_timestamp() AS now) AS clock
    ON CONFLICT (name) DO UPDATE SET
        holder = excluded.holder,
        fencing_token = CASE
            WHEN l.holder = excluded.holder AND l.expires_at > excluded.acquired_at
            THEN l.fencing_token
            ELSE l.fencing_token + 1
        END,
        expires_at = excluded.expires_at,
        acquired_at = CASE
            WHEN l.holder = excluded.holder AND l.expires_at > excluded.acquired_at
            THEN l.acquired_at
            ELSE excluded.acquired_at
        END
    WHERE l.holder = excluded.holder OR l.expires_at <= excluded.acquired_at
    RETURNING l.name, l.holder, l.fencing_token, l.expires_at
    """
)

_RELEASE = text(
    """
    UPDATE leases SET expires_at = clock_timestamp()
    WHERE name = :name AND holder = :holder AND fencing_token = :token
      AND expires_at > clock_timestamp()
    """
)

_CURRENT = text(
    """
    SELECT name, holder, fencing_token, expires_at FROM leases
    WHERE name = :name AND expires_at > clock_timestamp()
    """
)

_CHECK = text(
    """
    SELECT clock_timestamp() AS now, l.name, l.holder, l.fencing_token, l.expires_at
    FROM (SELECT 1) AS one LEFT JOIN leases AS l ON l.name = :name
    """
)


class PostgresLeaseStore:
    """A LeaseStore on the control-plane PostgreSQL (table from migrations/control).

    All times come from the database's ``clock_timestamp()``, never the controller's clock,
    so controllers whose clocks disagree still agree on who holds the lease and when it
    expires. Only the database clock's own steps can bend that, and the TTL should dwarf
    them. An unreachable database raises TransientError.
    """

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def acquire(self, name: str, holder: str, ttl_seconds: float) -> Lease | None:
        check_ttl(ttl_seconds)
        params = {"name": name, "holder": holder, "ttl": float(ttl_seconds)}
        with self._transaction() as connection:
            row = connection.execute(_ACQUIRE, params).one_or_none()
        return None if row is None else _lease(row)

    def release(self, lease: Lease) -> None:
        params = {"name": lease.name, "holder": lease.holder, "token": lease.fencing_token}
        with self._transaction() as connection:
            connection.execute(_RELEASE, params)

    def current(self, name: str) -> Lease | None:
        with self._transaction() as connection:
            row = connection.execute(_CURRENT, {"name": name}).one_or_none()
        return None if row is None else _lease(row)

    def check(self, lease: Lease) -> None:
        with self._transaction() as connection:
            row = connection.execute(_CHECK, {"name": lease.name}).one()
        now: datetime = row.now
        verify(None if row.name is None else _lease(row), lease, now)

    @contextmanager
    def _transaction(self) -> Iterator[Connection]:
        try:
            with self._engine.begin() as connection:
                yield connection
        except OperationalError as exc:
            raise unavailable(exc) from exc
        except PoolTimeoutError as exc:
            raise TransientError("control database pool exhausted") from exc


def _lease(row: Row[Any]) -> Lease:
    return Lease(
        name=str(row.name),
        holder=str(row.holder),
        fencing_token=int(row.fencing_token),
        expires_at=row.expires_at,
    )
