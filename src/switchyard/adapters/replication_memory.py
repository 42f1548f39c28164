"""The replication monitor's twin: lag figures a scenario sets, and WAL positions it moves."""

from __future__ import annotations

from switchyard.domain.replication import ReplicationLag
from switchyard.errors import TransientError


def caught_up(source: str, target: str, *, lsn: int = 0, seconds: float = 0.05) -> ReplicationLag:
    """What a healthy, idle pair reports."""
    return ReplicationLag(
        source=source,
        target=target,
        lag_bytes=0,
        lag_seconds=seconds,
        consumer_lag_messages=0,
        heartbeat_age_seconds=0.5,
        slot_exists=True,
        slot_active=True,
        applied_lsn=lsn,
        applied_tx_seq=0,
        source_epoch=1,
        behind_seconds=0.5,
        status_age_seconds=0.5,
        gap=None,
        resyncing=False,
        dead_letters=0,
        stale_refused=0,
    )


class InMemoryReplicationMonitor:
    def __init__(self) -> None:
        self.lags: dict[tuple[str, str], ReplicationLag] = {}
        self.positions: dict[str, int] = {}
        self.unreachable: set[str] = set()

    def lag(self, source: str, target: str) -> ReplicationLag:
        return self.lags.get((source, target)) or caught_up(
            source, target, lsn=self.positions.get(source, 0)
        )

    def wal_position(self, region: str) -> int:
        if region in self.unreachable:
            raise TransientError(f"{region}'s database is unreachable")
        return self.positions.get(region, 0)
