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
    # Source times of the newest transaction and heartbeat applied (None: none yet).
    source_commit_at: datetime | None = None
    heartbeat_at: datetime | None = None

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


@dataclass(frozen=True, slots=True)
class LossAtFence:
    """What the target had not applied of the source's changes when the source was fenced,
    from CDC positions (no row is read).

    ``unapplied_bytes`` is WAL the source wrote up to its fence beyond what the target applied:
    an upper bound, since it also counts WAL of tables CDC does not carry. When it is 0 nothing
    was lost. Otherwise ``rpo_seconds`` is an upper bound of the age of the oldest unapplied
    change: that change came after the newest transaction or heartbeat applied, so it is no
    older than that (give or take the source's publishing delay); how many writes it holds is
    unknown (``unreplicated_writes`` None). With the source unreachable at the fence its WAL
    position is unknown (``fence_lsn``, ``unapplied_bytes`` None) but that bound still holds.
    """

    fence_lsn: int | None
    applied_lsn: int
    unapplied_bytes: int | None
    unapplied_records: int | None  # published to the log, not yet applied
    rpo_seconds: float | None
    unreplicated_writes: int | None
    unpublished_bytes: int | None = None  # the source's WAL beyond what its slot confirmed

    def detail(self) -> dict[str, str | int | float | bool | None]:
        return {
            "rpo_from": "positions",
            "fence_lsn": self.fence_lsn,
            "applied_lsn": self.applied_lsn,
            "unapplied_bytes": self.unapplied_bytes,
            "unapplied_records": self.unapplied_records,
            "unpublished_bytes": self.unpublished_bytes,
            "rpo_seconds": self.rpo_seconds,
            "rpo_exact": self.unapplied_bytes == 0,
            "unreplicated_writes": self.unreplicated_writes,
        }


def loss_at_fence(
    lag: ReplicationLag, fence_lsn: int | None, fenced_at: datetime
) -> LossAtFence | None:
    """The loss at the fence from positions (``fence_lsn`` None: the source's WAL position
    could not be read); None when they cannot tell: nothing applied yet, a gap open or a
    re-sync running, or neither the source's position nor the time of anything applied known.
    """
    if lag.applied_lsn is None or lag.gap is not None or lag.resyncing:
        return None
    unapplied = None if fence_lsn is None else max(0, fence_lsn - lag.applied_lsn)
    if unapplied == 0:
        return LossAtFence(
            fence_lsn, lag.applied_lsn, 0, lag.consumer_lag_messages, 0.0, 0, lag.lag_bytes
        )
    applied_up_to = max(
        (t for t in (lag.source_commit_at, lag.heartbeat_at) if t is not None), default=None
    )
    if fence_lsn is None and applied_up_to is None:
        return None
    return LossAtFence(
        fence_lsn,
        lag.applied_lsn,
        unapplied,
        lag.consumer_lag_messages,
        seconds_between(fenced_at, applied_up_to),
        None,
        lag.lag_bytes,
    )


def seconds_between(later: datetime | None, earlier: datetime | None) -> float | None:
    if later is None or earlier is None:
        return None
    return max(0.0, (later - earlier).total_seconds())
