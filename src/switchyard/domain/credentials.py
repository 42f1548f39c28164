"""Database credentials leased from a secrets engine: a login that expires or is revoked.

Invariants:

- A :class:`DatabaseLease` is immutable; renewing a lease returns a new value with the new TTL.
- The password is a :class:`~switchyard.domain.secrets.Secret` and is left out of the repr
  entirely (not even the mask), so a lease can be logged by its id and username.
- Role names are checked by :func:`check_role` (``ValueError``, a caller bug), so every adapter
  refuses the same names and a name can never climb out of ``<mount>/creds/`` in a Vault path.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from switchyard.domain.secrets import Secret

_ROLE = re.compile(r"^[A-Za-z0-9_.-]+$")


def check_role(role: str) -> None:
    """Refuse an empty role name or one with characters outside ``[A-Za-z0-9_.-]``."""
    if not _ROLE.fullmatch(role) or role in {".", ".."}:
        raise ValueError(f"invalid database role {role!r}: want letters, digits, '_', '.', '-'")


@dataclass(frozen=True)
class DatabaseLease:
    """A username and password issued under a database-engine role, valid for ``ttl_seconds``
    from when it was issued or last renewed (unless revoked earlier)."""

    lease_id: str
    username: str
    password: Secret = field(repr=False)
    ttl_seconds: int

    def __post_init__(self) -> None:
        if not isinstance(self.password, Secret):
            raise TypeError(f"lease {self.lease_id!r}: password must be a Secret")
        if self.ttl_seconds < 0:
            raise ValueError(f"lease {self.lease_id!r}: ttl_seconds must be >= 0")
