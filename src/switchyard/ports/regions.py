"""What the failover saga does to a region: its own database's role and epoch, its readiness
and deep answers, and how much of what it acknowledged has not reached another region.

Adapters: ``adapters/regions_postgres.py`` + ``adapters/checks_http.py`` (real) and
``adapters/regions_memory.py`` (twin).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from switchyard.db.region_state import RegionState
from switchyard.domain.probe import ProbeResult
from switchyard.domain.region import RegionRole

# How many of the source's newest turns a key comparison looks at: bounded, so that a
# comparison fits in a saga step however large the regions grow.
NEWEST_TURNS_COMPARED = 1000


@dataclass(frozen=True, slots=True)
class ReplicationGap:
    """Writes acknowledged by ``source`` that ``target`` does not hold, among the ``compared``
    newest turns of ``source`` (older ones are not looked at)."""

    missing: int
    oldest_missing_at: datetime | None  # None when nothing is missing
    compared: int = 0


class RegionDatabases(Protocol):
    """Each region's own ``region_state`` row, written by the saga and the loop.

    - ``set_state`` is written by the leader holding fencing ``token`` and refuses
      (``FencingError``) an older token than the one that wrote the row, an older epoch, or
      another role at the recorded epoch; rewriting what is recorded is a no-op.
    - An unreachable database raises ``TransientError``.
    """

    def state(self, region: str) -> RegionState | None: ...

    def set_state(
        self, region: str, role: RegionRole, epoch: int, *, token: int
    ) -> RegionState: ...

    def unreplicated(
        self, source: str, target: str, *, newest: int = NEWEST_TURNS_COMPARED
    ) -> ReplicationGap:
        """Which of the ``newest`` dialog turns stored in ``source`` are missing from
        ``target`` (by key). Bounded: for when CDC positions cannot tell."""
        ...


class RegionChecks(Protocol):
    """Live checks of a region's runtime, as probe results; never raise."""

    def readiness(self, region: str) -> ProbeResult:
        """The runtime's ``/readyz``."""
        ...

    def canary(self, region: str, address: str) -> ProbeResult:
        """The golden question asked at ``address`` (what the GSLB answers), on the region's
        runtime port: ok only when the expected document is cited."""
        ...
