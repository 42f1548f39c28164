"""Is the control-plane store reachable, and at which migration revision?"""

from __future__ import annotations

from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError

from switchyard.db.engine import unavailable
from switchyard.db.migrate import connection_revision


def store_revision(engine: Engine) -> str | None:
    """The Alembic revision the store is at (None when never migrated).

    Read the way ``migrate.current_revision`` reads it, so /readyz and the migration
    commands cannot disagree. Raises TransientError when the database cannot be reached.
    """
    try:
        with engine.connect() as conn:
            return connection_revision(conn)
    except OperationalError as exc:
        raise unavailable(exc) from exc
