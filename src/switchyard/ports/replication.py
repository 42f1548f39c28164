"""Reading replication lag between regions (CDC through Kafka).

Adapters: ``adapters/replication_postgres.py`` (the primary's slot + the standby's
``cdc_applied``) and ``adapters/replication_memory.py`` (twin, for scenario tests).
"""

from __future__ import annotations

from typing import Protocol

from switchyard.domain.replication import ReplicationLag


class ReplicationMonitor(Protocol):
    def lag(self, source: str, target: str) -> ReplicationLag:
        """The four lag figures from ``source`` to ``target``; parts that cannot be read (a
        database down) are None. Never raises for an unreachable database."""
        ...

    def wal_position(self, region: str) -> int:
        """The region's current WAL position (TransientError if unreachable)."""
        ...
