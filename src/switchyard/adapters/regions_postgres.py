"""Each region's PostgreSQL as the saga reaches it: ``region_state`` and the replication gap.

One engine per region, built by ``bootstrap`` with the control plane's own (static) credentials
for that database; each call is one short transaction with the engine's connect timeout.
"""

from __future__ import annotations

from collections.abc import Mapping

from sqlalchemy import Engine, select

from switchyard.db.engine import unit_of_work
from switchyard.db.region_state import RegionState, read_region_state, set_region_state
from switchyard.db.region_tables import dialog_turns
from switchyard.domain.region import RegionRole
from switchyard.errors import NotFoundError
from switchyard.ports.regions import ReplicationGap


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

    def unreplicated(self, source: str, target: str) -> ReplicationGap:
        # Turns are keyed by (session, seq) in every region; a turn replicated by CDC keeps its
        # key. Reading every key is fine at drill scale; CDC reports lag for the steady state.
        keys = select(dialog_turns.c.session_id, dialog_turns.c.seq, dialog_turns.c.created_at)
        with unit_of_work(self._engine(target)) as session:
            held = {(row.session_id, row.seq) for row in session.execute(keys)}
        with unit_of_work(self._engine(source)) as session:
            missing = [
                row.created_at
                for row in session.execute(keys)
                if (row.session_id, row.seq) not in held
            ]
        return ReplicationGap(len(missing), min(missing) if missing else None)

    def dispose(self) -> None:
        for engine in self._engines.values():
            engine.dispose()
