"""Each region's PostgreSQL as the saga reaches it: ``region_state`` and the replication gap.

One engine per region, built by ``bootstrap.control_region_stores`` with the control plane's own
(static) credentials for that database; each call is one short transaction, and every statement
and lock wait is cut off by the engine's timeouts (a fraction of a saga step).
"""

from __future__ import annotations

from collections.abc import Mapping

from sqlalchemy import Engine, select, tuple_

from switchyard.db.engine import unit_of_work
from switchyard.db.region_state import RegionState, read_region_state, set_region_state
from switchyard.db.region_tables import dialog_turns
from switchyard.domain.region import RegionRole
from switchyard.errors import NotFoundError
from switchyard.ports.regions import NEWEST_TURNS_COMPARED, ReplicationGap


class PostgresRegionDatabases:
    def __init__(self, engines: Mapping[str, Engine]) -> None:
        self._engines = dict(engines)

    def _engine(self, region: str) -> Engine:
        try:
            return self._engines[region]
        except KeyError:
            raise NotFoundError(f"no database configured for region {region!r}") from None

    def state(self, region: str) -> RegionState | None:
        with unit_of_work(self._engine(region)) as session:
            return read_region_state(session=session, region=region)

    def set_state(self, region: str, role: RegionRole, epoch: int, *, token: int) -> RegionState:
        with unit_of_work(self._engine(region)) as session:
            return set_region_state(
                session=session, region=region, role=role, epoch=epoch, token=token
            )

    def unreplicated(
        self, source: str, target: str, *, newest: int = NEWEST_TURNS_COMPARED
    ) -> ReplicationGap:
        # Turns are keyed by (session, seq) in every region; a turn replicated by CDC keeps its
        # key. Only the source's newest turns are compared, and only those keys are looked up
        # in the target (by primary key): two bounded statements, whatever the table's size.
        t = dialog_turns.c
        recent = select(t.session_id, t.seq, t.created_at).order_by(t.created_at.desc())
        with unit_of_work(self._engine(source)) as session:
            rows = [
                (r.session_id, r.seq, r.created_at) for r in session.execute(recent.limit(newest))
            ]
        if not rows:
            return ReplicationGap(0, None, 0)
        keys = [(sid, seq) for sid, seq, _ in rows]
        held_query = select(t.session_id, t.seq).where(tuple_(t.session_id, t.seq).in_(keys))
        with unit_of_work(self._engine(target)) as session:
            held = {(r.session_id, r.seq) for r in session.execute(held_query)}
        missing = [at for sid, seq, at in rows if (sid, seq) not in held]
        return ReplicationGap(len(missing), min(missing) if missing else None, len(rows))

    def dispose(self) -> None:
        for engine in self._engines.values():
            engine.dispose()
