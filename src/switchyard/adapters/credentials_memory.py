"""In-memory twin of the credential leases, for scenario tests and local runs.

Same contract as the Vault adapter (see ``switchyard.ports.credentials.CredentialLeases``).
There is no database behind it: :meth:`InMemoryCredentialLeases.is_live` stands in for "this
login still works", and it covers open sessions too, since Vault's revocation here ends them.
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from switchyard.domain.credentials import DatabaseLease, check_role
from switchyard.domain.secrets import Secret
from switchyard.errors import NotFoundError
from switchyard.ports.secrets import SecretRegistry

DEFAULT_TTL_SECONDS = 3600
DEFAULT_MAX_TTL_SECONDS = 86400


def _utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class _Issued:
    role: str
    lease: DatabaseLease
    issued_at: datetime
    expires_at: datetime
    revoked: bool = False

    def live(self, now: datetime) -> bool:
        return not self.revoked and now < self.expires_at


class InMemoryCredentialLeases:
    """Leases in a dict, per role as Vault issues them; one lock makes each call atomic.

    ``roles`` are the roles that exist (others are ``NotFoundError``, as in Vault). ``clock``
    returns timezone-aware datetimes; a lease past its TTL is expired, as Vault would revoke
    it then. Invariant: a lease's expiry never passes ``issued_at + max_ttl_seconds``.
    """

    def __init__(
        self,
        roles: Iterable[str],
        *,
        ttl_seconds: int = DEFAULT_TTL_SECONDS,
        max_ttl_seconds: int = DEFAULT_MAX_TTL_SECONDS,
        clock: Callable[[], datetime] = _utc_now,
        redactor: SecretRegistry | None = None,
    ) -> None:
        self._roles = frozenset(roles)
        for role in self._roles:
            check_role(role)
        self._ttl = ttl_seconds
        self._max_ttl = max_ttl_seconds
        self._clock = clock
        self._redactor = redactor
        self._lock = threading.Lock()
        self._issued: dict[str, _Issued] = {}

    def issue(self, role: str) -> DatabaseLease:
        self._known(role)
        password = Secret(secrets.token_urlsafe(24))
        if self._redactor is not None:
            self._redactor.register(password)
        now = self._clock()
        ttl = min(self._ttl, self._max_ttl)
        lease = DatabaseLease(
            lease_id=f"database/creds/{role}/{secrets.token_hex(12)}",
            username=f"v-{role[:24]}-{secrets.token_hex(8)}",
            password=password,
            ttl_seconds=ttl,
        )
        with self._lock:
            self._issued[lease.lease_id] = _Issued(role, lease, now, now + timedelta(seconds=ttl))
        return lease

    def revoke_role(self, role: str) -> int:
        self._known(role)
        now = self._clock()
        with self._lock:
            live = [i for i in self._issued.values() if i.role == role and i.live(now)]
            for issued in live:
                issued.revoked = True
            return len(live)

    def renew(self, lease: DatabaseLease) -> DatabaseLease:
        now = self._clock()
        with self._lock:
            issued = self._issued.get(lease.lease_id)
            if issued is None or not issued.live(now):
                raise NotFoundError(f"lease {lease.lease_id!r} not found (revoked or expired)")
            cap = issued.issued_at + timedelta(seconds=self._max_ttl)
            issued.expires_at = min(now + timedelta(seconds=self._ttl), cap)
            ttl = int((issued.expires_at - now).total_seconds())
            renewed = DatabaseLease(lease.lease_id, lease.username, lease.password, ttl)
            issued.lease = renewed
            return renewed

    def is_live(self, lease: DatabaseLease) -> bool:
        """Whether ``lease``'s login would work now: issued here, with this username and
        password, and neither revoked nor expired."""
        with self._lock:
            issued = self._issued.get(lease.lease_id)
            return (
                issued is not None
                and issued.lease.username == lease.username
                and issued.lease.password == lease.password
                and issued.live(self._clock())
            )

    def _known(self, role: str) -> None:
        check_role(role)
        if role not in self._roles:
            raise NotFoundError(f"database role {role!r} not found")

    def __repr__(self) -> str:
        return f"InMemoryCredentialLeases(roles={sorted(self._roles)}, leases={len(self._issued)})"
