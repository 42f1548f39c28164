"""Replication lag between a primary and a standby, as the monitor reads it (pure values).

Four figures, each None while unknown:
- ``lag_bytes``: the primary's current WAL position - what its slot has confirmed (the source
  published and the log acknowledged everything before it);
- ``lag_seconds``: source commit → applied in the standby, for the last transaction applied;
- ``consumer_lag_messages``: records in the topic the sink has not processed yet;
- ``heartbeat_age_seconds``: how long ago the source's last heartbeat was applied.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from typing import Any

# Older sink status than this makes the sink's own figures unknown (the sink writes it ~1/s).
STATUS_STALE_SECONDS = 10.0


@dataclass(frozen=True, slots=True)
class ReplicationLag:
    source: str
    target: str
    lag_bytes: int | None
    lag_seconds: float | None
    consumer_lag_messages: int | None
    heartbeat_age_seconds: float | None
    slot_exists: bool | None
    slot_active: bool | None
    applied_lsn: int | None
    applied_tx_seq: int | None
    source_epoch: int | None
    behind_seconds: float | None  # now - the source time of the newest thing applied
    status_age_seconds: float | None
    gap: dict[str, Any] | None
    resyncing: bool
    dead_letters: int
    stale_refused: int

    @property
    def sink_reporting(self) -> bool:
        return (
            self.status_age_seconds is not None and self.status_age_seconds <= STATUS_STALE_SECONDS
        )

    def gate_seconds(self) -> float | None:
        """The lag the failover gate compares with ``max_lag_seconds``.

        None (unknown) when the sink does not report. Infinite while a gap is open or a
        re-sync runs: the standby lacks changes nobody can count. When the sink has processed
        every record, the apply delay of the last transaction: a primary that died stops
        heartbeating, and that must not read as growing lag. Otherwise how far behind the
        source the newest applied record is.
        """
        if not self.sink_reporting:
            return None
        if self.gap is not None or self.resyncing:
            return math.inf
        if self.consumer_lag_messages == 0:
            return self.lag_seconds if self.lag_seconds is not None else 0.0
        return self.behind_seconds


def seconds_between(later: datetime | None, earlier: datetime | None) -> float | None:
    if later is None or earlier is None:
        return None
    return max(0.0, (later - earlier).total_seconds())
