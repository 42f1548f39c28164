"""The PostgreSQL probe: connect, and read the role and epoch the region's database records."""

from __future__ import annotations

import math
import re
from urllib.parse import quote

import psycopg
from psycopg import conninfo as pg_conninfo

from switchyard.adapters.probes.outcome import Verdict, measured, one_line
from switchyard.domain.probe import ProbeCode, ProbeKind, ProbeResult
from switchyard.domain.secrets import Secret

STATE_QUERY = "SELECT role, epoch FROM region_state WHERE region = %s"
APPLICATION_NAME = "switchyard-probe"
# SQLAlchemy's "postgresql+psycopg://" names the driver in the scheme; libpq wants it without.
_DRIVER_SCHEME = re.compile(r"^postgres(?:ql)?\+[a-z0-9_]+://")


class PostgresProbe:
    """Connect to a region's database and read ``region_state`` for ``region``.

    ok when the row is there; the result carries its role and epoch. Any driver error is code
    ``db_error`` with the driver's one-line message: the DSN and the password never appear in
    a reason (they are masked even if the driver were to echo them). Every probe opens a new
    connection, since "accepts connections" is part of what it checks.

    ``dsn`` is a libpq connection string or URL, or a SQLAlchemy ``postgresql+psycopg://`` URL.
    Construction raises ``ValueError`` (without the DSN in it) when it cannot be parsed.
    """

    __slots__ = ("_action", "_conninfo", "_secrets", "kind", "region", "target")

    def __init__(self, target: str, dsn: Secret, region: str) -> None:
        self.target = target
        self.kind = ProbeKind.POSTGRES
        self.region = region
        raw = _DRIVER_SCHEME.sub("postgresql://", dsn.reveal())
        try:
            params = pg_conninfo.conninfo_to_dict(raw)
        except psycopg.Error:
            # The driver's message quotes the malformed text, which may hold the password.
            raise ValueError(f"postgres probe of {target}: the DSN cannot be parsed") from None
        password = str(params.get("password") or "")
        self._secrets = tuple(s for s in (dsn.reveal(), raw, password, quote(password)) if s)
        self._conninfo = Secret(pg_conninfo.make_conninfo("", **params))
        where = f"{params.get('host', 'localhost')}:{params.get('port', 5432)}"
        self._action = f"PostgreSQL at {where}/{params.get('dbname', '')}"

    async def probe(self, timeout_seconds: float) -> ProbeResult:
        return await measured(
            self.target,
            self.kind,
            timeout_seconds,
            self._check(timeout_seconds),
            self._action,
            self._secrets,
        )

    async def _check(self, timeout_seconds: float) -> Verdict:
        try:
            return await self._read_state(timeout_seconds)
        except psycopg.Error as exc:
            detail = one_line(_message(exc), self._secrets) or type(exc).__name__
            return Verdict(ProbeCode.DB_ERROR, f"{self._action}: {detail}")

    async def _read_state(self, timeout_seconds: float) -> Verdict:
        conn = await psycopg.AsyncConnection.connect(
            self._conninfo.reveal(),
            autocommit=True,
            # libpq's own limit (whole seconds, at least 2) backs up the probe's deadline.
            connect_timeout=max(2, math.ceil(timeout_seconds)),
            application_name=APPLICATION_NAME,
        )
        async with conn:
            cursor = await conn.execute(STATE_QUERY, (self.region,))
            row = await cursor.fetchone()
        if row is None:
            return Verdict(
                ProbeCode.DB_ERROR, f"{self._action}: no region_state row for {self.region}"
            )
        role, epoch = row
        if not isinstance(role, str) or not isinstance(epoch, int):
            return Verdict(ProbeCode.DB_ERROR, f"{self._action}: region_state row is malformed")
        return Verdict(
            ProbeCode.OK, f"{self._action}: {self.region} is {role} at epoch {epoch}", role, epoch
        )


def _message(exc: psycopg.Error) -> str:
    # A server error's primary message is one line without the SQL context lines.
    return exc.diag.message_primary or str(exc)
