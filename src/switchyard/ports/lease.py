"""The leader lease port: one named lease, a holder, a fencing token and an expiry.

Every adapter keeps these invariants (the contract suite in tests/contract checks them):

- ``acquire`` takes the lease when it is free, expired or released, or renews it when the
  caller already holds it live; otherwise it returns None. It is one compare-and-set: of
  concurrent acquirers of a free lease exactly one wins.
- A renewal keeps the fencing token. Every other grant sets it to the previous token plus
  one (1 for a lease never held), so a change of holder always raises it and it never
  decreases; resources that remember the highest token seen can refuse a deposed leader.
- ``release`` ends the lease only if it is still held live with that holder and token;
  otherwise it does nothing. The token survives release.
- ``check`` raises FencingError unless the lease is still held live with that holder and
  token. Callers check before each action, and still pass the token to the resource.
- Time is the store's clock, not the caller's, so controllers with skewed clocks agree.
- An unreachable store raises TransientError; the caller must then treat itself as not
  holding the lease (fail-safe).
"""

from __future__ import annotations

from typing import Protocol

from switchyard.domain.lease import Lease


class LeaseStore(Protocol):
    """Compare-and-set storage for named leases with fencing tokens."""

    def acquire(self, name: str, holder: str, ttl_seconds: float) -> Lease | None:
        """Take or renew ``name`` for ``holder`` until now + ``ttl_seconds``; None if refused."""
        ...

    def release(self, lease: Lease) -> None:
        """End ``lease`` now if it is still current; a stale lease is left alone."""
        ...

    def current(self, name: str) -> Lease | None:
        """The live lease called ``name``, None when free, expired or released."""
        ...

    def check(self, lease: Lease) -> None:
        """Raise FencingError unless ``lease`` is still live with the same holder and token."""
        ...
