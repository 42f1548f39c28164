"""Snapshot status per region, read from the regions' buckets, for the API, metrics and the
failover gate ("standby generation behind the primary by K")."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime

from switchyard.errors import SwitchyardError
from switchyard.ports.objects import ObjectStore
from switchyard.snapshots.layout import read_active, read_pointer


@dataclass(frozen=True, slots=True)
class SnapshotStatus:
    region: str
    latest_generation: int | None  # newest generation in the region's bucket
    active_generation: int | None  # generation the region's runtime serves
    active_created_at: datetime | None  # when the served generation was published
    activated_at: datetime | None
    error: str | None = None  # the bucket could not be read

    def age_seconds(self, now: datetime) -> float | None:
        """How old the knowledge the region serves is (since its generation was published)."""
        if self.active_created_at is None:
            return None
        return max(0.0, (now - self.active_created_at).total_seconds())


def read_status(stores: Mapping[str, ObjectStore]) -> dict[str, SnapshotStatus]:
    """Each region's status; a bucket that cannot be read gives a status with ``error``."""
    out = {}
    for region, store in stores.items():
        try:
            latest, _ = read_pointer(store)
            active = read_active(store, region)
        except SwitchyardError as exc:
            out[region] = SnapshotStatus(region, None, None, None, None, str(exc))
            continue
        out[region] = SnapshotStatus(
            region,
            None if latest is None else latest.generation,
            None if active is None else active.generation,
            None if active is None else active.created_at,
            None if active is None else active.activated_at,
        )
    return out


def generations_behind(
    statuses: Mapping[str, SnapshotStatus], primary: str, region: str
) -> int | None:
    """How many generations ``region`` serves behind what ``primary`` published (None: unknown).

    The primary's figure is the newest generation in its bucket; the region's is what its
    runtime activated (none: behind by every generation). A primary that never published
    anything leaves nothing to be behind."""
    source = statuses.get(primary)
    target = statuses.get(region)
    if source is None or target is None or source.error or target.error:
        return None
    if source.latest_generation is None:
        return 0
    if target.active_generation is None:
        return source.latest_generation  # serves no published generation at all
    return max(0, source.latest_generation - target.active_generation)


@dataclass(frozen=True, slots=True)
class SnapshotFigures:
    """What dashboards, metrics and the failover gate read for one region."""

    status: SnapshotStatus
    primary: bool
    age_seconds: float | None
    generations_behind: int | None  # None for the primary, or unknown


def snapshot_figures(
    statuses: Mapping[str, SnapshotStatus], primary: str | None, now: datetime
) -> dict[str, SnapshotFigures]:
    """Each region's figures at ``now``, "behind" counted from ``primary``'s newest."""
    return {
        region: SnapshotFigures(
            status,
            region == primary,
            status.age_seconds(now),
            None
            if primary is None or region == primary
            else generations_behind(statuses, primary, region),
        )
        for region, status in statuses.items()
    }


class SnapshotWatch:
    """The regions' snapshot status for a loop that cycles faster than snapshots change: read
    at most every ``every_seconds``, the last reading served in between."""

    def __init__(
        self,
        stores: Mapping[str, ObjectStore],
        *,
        every_seconds: float = 15.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._stores = stores
        self._every = every_seconds
        self._clock = clock
        self._read_at: float | None = None
        self._last: dict[str, SnapshotStatus] = {}

    def statuses(self) -> dict[str, SnapshotStatus]:
        now = self._clock()
        if self._read_at is None or now - self._read_at >= self._every:
            self._last = read_status(self._stores)
            self._read_at = now
        return self._last
