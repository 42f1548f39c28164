"""Is the control-plane store reachable, and at which migration revision?"""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError, ProgrammingError

from switchyard.db.engine import unavailable
from switchyard.db.migrate import VERSION_TABLE


def store_revision(engine: Engine) -> str | None:
    """The Alembic revision the store is at (None when never migrated).

    Raises TransientError when the database cannot be reached.
    """
    try:
        with engine.connect() as conn:
            return conn.execute(text(f"SELECT version_num FROM {VERSION_TABLE}")).scalar()  # noqa: S608
    except ProgrammingError:  # no version table: never migrated
        return None
    except OperationalError as exc:
        raise unavailable(exc) from exc
