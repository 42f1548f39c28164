"""The leader lease and the rules every ``LeaseStore`` adapter applies.

A lease is a named row with a holder, a fencing token and an expiry. The rules, stated once
here so the in-memory twin and the PostgreSQL adapter cannot drift apart:

- A lease is *live* while ``now < expires_at``; at ``expires_at`` it is free.
- Only the holder of a live lease may renew it; a renewal keeps the fencing token.
- Taking a free or expired lease (any holder, including the previous one) sets the fencing
  token to the previous token plus one (1 for a lease never held). The token never decreases,
  so a token seen by a fenced resource orders every holder that ever acted.
- Releasing expires the lease but keeps its token, so the next holder still gets a higher one.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from switchyard.errors import FencingError


@dataclass(frozen=True, slots=True)
class Lease:
    """A granted lease; ``expires_at`` is timezone-aware and read from the store's clock."""

    name: str
    holder: str
    fencing_token: int
    expires_at: datetime

    def is_live(self, now: datetime) -> bool:
        """Whether the lease is still held at ``now`` (expiry is exclusive)."""
        return now < self.expires_at


def check_ttl(ttl_seconds: float) -> None:
    """Refuse a lease term that is not positive (``ValueError``, a caller bug)."""
    if ttl_seconds <= 0:
        raise ValueError(f"lease ttl must be positive, got {ttl_seconds}")


def grant(
    current: Lease | None, *, name: str, holder: str, ttl_seconds: float, now: datetime
) -> Lease | None:
    """The lease after ``holder`` asks for ``name`` at ``now``, or None when refused.

    ``current`` is the stored lease (live, expired or released), None if never held.
    """
    check_ttl(ttl_seconds)
    expires_at = now + timedelta(seconds=ttl_seconds)
    if current is None:
        return Lease(name=name, holder=holder, fencing_token=1, expires_at=expires_at)
    if current.is_live(now):
        if current.holder != holder:
            return None
        return replace(current, expires_at=expires_at)
    return Lease(
        name=name, holder=holder, fencing_token=current.fencing_token + 1, expires_at=expires_at
    )


def released(current: Lease | None, lease: Lease, now: datetime) -> Lease | None:
    """The stored lease after ``lease`` is released at ``now``; None means leave it unchanged.

    Only a live lease still held with the same holder and token is released; releasing a
    stale lease must not end a newer holder's term.
    """
    if current is None or not _same_term(current, lease) or not current.is_live(now):
        return None
    return replace(current, expires_at=now)


def verify(current: Lease | None, lease: Lease, now: datetime) -> None:
    """Raise FencingError unless ``lease`` is still the live lease with the same token."""
    if current is None or not _same_term(current, lease):
        raise FencingError(
            f"lease {lease.name!r}: token {lease.fencing_token} held by {lease.holder!r}"
            " is no longer current"
        )
    if not current.is_live(now):
        raise FencingError(
            f"lease {lease.name!r}: token {lease.fencing_token} held by {lease.holder!r}"
            f" expired at {current.expires_at.isoformat()}"
        )


def _same_term(current: Lease, lease: Lease) -> bool:
    return (
        current.name == lease.name
        and current.holder == lease.holder
        and current.fencing_token == lease.fencing_token
    )
