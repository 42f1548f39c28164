"""In-memory DnsProvider twin for scenario tests: the same compare-and-set, no server."""

from __future__ import annotations

import threading
from collections.abc import Sequence

from switchyard.domain.dns import (
    Answer,
    Change,
    RecordKey,
    RecordSet,
    ServerAnswer,
    apply_changes,
    check_name,
    in_zone,
)
from switchyard.errors import FatalError, TransientError


class InMemoryDnsProvider:
    """A zone held in a dict; the compare-and-set rules come from ``switchyard.domain.dns``.

    One lock makes each call atomic, so concurrent writers behave as with an RFC 2136 server.
    ``answer`` returns every positively weighted address (deterministic, unlike PowerDNS's
    weighted pick). ``set_reachable(False)`` simulates an outage: every call then raises
    ``TransientError`` until it is set back.
    """

    def __init__(self, zone: str, *, supports_weights: bool = True, name: str = "memory") -> None:
        self.zone = check_name(zone)
        self.name = name
        self.supports_weights = supports_weights
        self._lock = threading.Lock()
        self._records: dict[RecordKey, RecordSet] = {}
        self._reachable = True

    def set_reachable(self, reachable: bool) -> None:
        """Simulate the server going away (False) or coming back (True)."""
        with self._lock:
            self._reachable = reachable

    def records(self, name: str) -> tuple[RecordSet, ...]:
        owner = self._owner(name)
        with self._lock:
            self._check_reachable()
            return tuple(r for key, r in sorted(self._records.items()) if key[0] == owner)

    def apply(self, changes: Sequence[Change]) -> None:
        if not changes:
            return
        for change in changes:
            self._owner(change.name)
            weighted = change.after is not None and change.after.weights is not None
            if weighted and not self.supports_weights:
                raise FatalError(f"{self.name}: cannot serve weighted answers for {change.name}")
        with self._lock:
            self._check_reachable()
            updated = apply_changes(tuple(self._records.values()), changes)
            self._records = {record.key: record for record in updated}

    def answer(self, name: str) -> Answer:
        owner = self._owner(name)
        with self._lock:
            self._check_reachable()
            record = self._records.get((owner, "A"))
        # No server to ask: the twin names itself as the one that answered.
        answered = () if record is None else record.answered
        return Answer((ServerAnswer(f"{self.name} (in memory)", answered),))

    def _owner(self, name: str) -> str:
        owner = check_name(name)
        if not in_zone(owner, self.zone):
            raise ValueError(f"{self.name}: {name} is outside zone {self.zone}")
        return owner

    def _check_reachable(self) -> None:
        if not self._reachable:
            raise TransientError(f"{self.name}: zone {self.zone} is unreachable (simulated)")

    def __repr__(self) -> str:
        return f"InMemoryDnsProvider(zone={self.zone!r}, records={len(self._records)})"
