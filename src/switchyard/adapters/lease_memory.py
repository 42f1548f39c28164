"""In-memory LeaseStore twin for scenario tests: the same rules, an injected clock."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime

from switchyard.domain.lease import Lease, grant, released, verify


class InMemoryLeaseStore:
    """A LeaseStore held in a dict; the rules come from ``switchyard.domain.lease``.

    ``clock`` returns timezone-aware datetimes and plays the role of the database clock. One
    lock makes each operation atomic, so concurrent acquirers behave as with PostgreSQL.
    """

    def __init__(self, clock: Callable[[], datetime]) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._leases: dict[str, Lease] = {}

    def acquire(self, name: str, holder: str, ttl_seconds: float) -> Lease | None:
        with self._lock:
            lease = grant(
                self._leases.get(name),
                name=name,
                holder=holder,
                ttl_seconds=ttl_seconds,
                now=self._clock(),
            )
            if lease is not None:
                self._leases[name] = lease
            return lease

    def release(self, lease: Lease) -> None:
        with self._lock:
            ended = released(self._leases.get(lease.name), lease, self._clock())
            if ended is not None:
                self._leases[lease.name] = ended

    def current(self, name: str) -> Lease | None:
        with self._lock:
            lease = self._leases.get(name)
            return lease if lease is not None and lease.is_live(self._clock()) else None

    def check(self, lease: Lease) -> None:
        with self._lock:
            verify(self._leases.get(lease.name), lease, self._clock())
