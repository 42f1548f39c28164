"""Engines and the unit of work: the one place a transaction commits (control plane or region).

Nothing here runs at import time; ``bootstrap.py`` calls ``make_engine`` once.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Engine, create_engine
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.orm import Session

from switchyard.errors import TransientError

CONNECT_TIMEOUT_SECONDS = 3


def make_engine(
    url: str,
    *,
    connect_timeout_seconds: int = CONNECT_TIMEOUT_SECONDS,
    statement_timeout_seconds: float | None = None,
) -> Engine:
    """An engine for a PostgreSQL ``postgresql+psycopg://`` URL.

    Connections are pinged before use so a restarted server costs one reconnect, not a failed
    cycle; the short connect timeout makes an unreachable witness fail fast, and the loop then
    stays put rather than hang (fail-safe).

    ``statement_timeout_seconds``: the server cancels any statement running longer, and any
    wait for a lock longer than half of it (``statement_timeout`` and ``lock_timeout``, set at
    connect, so a blocked statement says it was the lock); the cancelled statement raises
    ``TransientError`` through ``unit_of_work``. None: no limit.
    """
    connect_args: dict[str, object] = {"connect_timeout": connect_timeout_seconds}
    if statement_timeout_seconds is not None:
        ms = max(2, round(statement_timeout_seconds * 1000))
        connect_args["options"] = f"-c statement_timeout={ms} -c lock_timeout={ms // 2}"
    return create_engine(url, pool_pre_ping=True, connect_args=connect_args)


@contextmanager
def unit_of_work(engine: Engine) -> Iterator[Session]:
    """A session whose work commits if the block succeeds and rolls back if it raises.

    Services take this session as a keyword argument and never commit themselves. An
    unreachable database (``OperationalError``) surfaces as ``TransientError``; every other
    error propagates unchanged after the rollback.
    """
    # expire_on_commit=False: values read in the block stay readable after it commits.
    session = Session(engine, expire_on_commit=False)
    try:
        yield session
        session.commit()
    except OperationalError as exc:
        session.rollback()
        raise unavailable(exc) from exc
    except DBAPIError as exc:
        session.rollback()
        if getattr(exc.orig, "sqlstate", None) == _INSUFFICIENT_PRIVILEGE:
            # A login whose grants were taken back (a fence revoking its Vault lease ends its
            # sessions, but one that logged in meanwhile stays, without privileges): the region
            # is not serving writes through this login, which is a 503, not a crash.
            detail = _driver_detail(exc)
            raise TransientError(f"database login lost its privileges: {detail}") from exc
        raise
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def unavailable(exc: OperationalError) -> TransientError:
    """The TransientError to raise for an unreachable database.

    It carries the driver's message only, never the SQL or its parameters, which may hold
    values that must not reach logs.
    """
    detail = _driver_detail(exc)
    if getattr(exc.orig, "sqlstate", None) in _TIMED_OUT:
        return TransientError(f"database statement timed out: {detail}")
    return TransientError(f"database unavailable: {detail}")


def _driver_detail(exc: DBAPIError) -> str:
    # The first line of the driver's message: never the SQL or its parameters.
    text = str(exc.orig).strip() if exc.orig is not None else type(exc).__name__
    return text.splitlines()[0] if text else type(exc).__name__


# query_canceled (statement_timeout) and lock_not_available (lock_timeout)
_TIMED_OUT = frozenset({"57014", "55P03"})
_INSUFFICIENT_PRIVILEGE = "42501"
