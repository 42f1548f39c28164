"""In-memory twins of RegionDatabases and RegionChecks for scenario tests.

``down`` holds the regions whose database is unreachable; ``writes`` the acknowledged writes of
each region (ids with their time); ``broken`` the regions whose runtime fails its checks;
``history`` every region's state after each change (for checkers). ``set_state`` applies the
same rules as the real region database (``domain.region.state_change_refusal``: fencing
token, epoch, one role per epoch); tests/contract/test_region_databases.py runs both.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime

from switchyard.db.region_state import RegionState
from switchyard.domain.probe import ProbeKind, ProbeResult
from switchyard.domain.region import RegionRole, state_change_refusal
from switchyard.errors import FencingError, TransientError
from switchyard.ports.regions import NEWEST_TURNS_COMPARED, ReplicationGap


class InMemoryRegionDatabases:
    def __init__(self, clock: Callable[[], datetime]) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self.states: dict[str, RegionState] = {}
        self.down: set[str] = set()
        self.writes: dict[str, dict[str, datetime]] = {}
        # Every region's state after each change, oldest first: what a safety checker reads.
        self.history: list[dict[str, RegionState]] = []
        # Called (outside the lock) after each change: a test's fault injection point.
        self.on_set: Callable[[RegionState], None] | None = None

    def seed(self, region: str, role: RegionRole, epoch: int) -> None:
        """Record a state as ``switchyard migrate`` or an operator would: no leader, token 0,
        no rules checked (a test may seed a state the rules would refuse)."""
        self.states[region] = RegionState(region, role, epoch, self._clock())
        self.history.append(dict(self.states))

    def _reach(self, region: str) -> None:
        if region in self.down:
            raise TransientError(f"database unavailable: region {region} unreachable")

    def state(self, region: str) -> RegionState | None:
        with self._lock:
            self._reach(region)
            return self.states.get(region)

    def set_state(self, region: str, role: RegionRole, epoch: int, *, token: int) -> RegionState:
        with self._lock:
            self._reach(region)
            current = self.states.get(region)
            if current is not None:
                why = state_change_refusal(
                    region,
                    before=(current.role, current.epoch),
                    after=(role, epoch),
                    before_token=current.fencing_token,
                    token=token,
                )
                if why is not None:
                    raise FencingError(why)
                if (current.role, current.epoch, current.fencing_token) == (role, epoch, token):
                    return current
            state = RegionState(region, role, epoch, self._clock(), token)
            self.states[region] = state
            self.history.append(dict(self.states))
            on_set = self.on_set
        if on_set is not None:
            on_set(state)
        return state

    def unreplicated(
        self, source: str, target: str, *, newest: int = NEWEST_TURNS_COMPARED
    ) -> ReplicationGap:
        with self._lock:
            self._reach(source)
            self._reach(target)
            held = self.writes.get(target, {})
            compared = sorted(self.writes.get(source, {}).items(), key=lambda kv: kv[1])[-newest:]
            missing = [at for key, at in compared if key not in held]
            return ReplicationGap(len(missing), min(missing) if missing else None, len(compared))


class InMemoryRegionChecks:
    def __init__(self, databases: InMemoryRegionDatabases) -> None:
        self._databases = databases
        self.broken: set[str] = set()

    def readiness(self, region: str) -> ProbeResult:
        return self._check(region, ProbeKind.HTTP, f"{region} ready")

    def canary(self, region: str, address: str) -> ProbeResult:
        return self._check(region, ProbeKind.CANARY, f"{region} at {address} cited the document")

    def _check(self, region: str, kind: ProbeKind, good: str) -> ProbeResult:
        state = self._databases.states.get(region)
        role, epoch = (state.role.value, state.epoch) if state else (None, None)
        if region in self.broken:
            reason = f"{region} runtime does not answer"
            return ProbeResult(region, kind, False, 0.0, "connect_refused", reason, role, epoch)
        return ProbeResult(region, kind, True, 0.0, "ok", good, role, epoch)
