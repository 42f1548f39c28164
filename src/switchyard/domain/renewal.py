"""When to renew a Vault credential and when to replace it: pure decisions over a granted TTL.

Vault (or OpenBao) grants a token or a database lease for a TTL, renewable up to the role's
maximum TTL. A renewal near that maximum grants less than the full TTL (it is *capped*); after
it nothing can extend the credential, so the holder must obtain a new one (log in again, issue
a new lease) while the old one still works.

Invariants:

- A credential is renewed once ``RENEW_FRACTION`` (2/3) of its TTL has passed, so a renewal
  that fails for a while (Vault unreachable) has a third of the TTL to be retried.
- A capped grant is replaced at once: when a renewal is capped at least a third of the full
  TTL is left (the previous renewal happened at 2/3 of a TTL that ended no later than the
  maximum), which is the time connections of the old credential get to finish their work.
- A grant that is not renewable is replaced at its renewal time.
- Times are plain seconds on one monotonic clock, passed in: nothing here reads a clock.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import StrEnum

RENEW_FRACTION = 2 / 3
# Vault rounds TTLs to whole seconds; a grant this much shorter than the full TTL is capped.
CAP_TOLERANCE_SECONDS = 1.0


class Step(StrEnum):
    """What a credential's holder should do now."""

    WAIT = "wait"  # nothing until ``Plan.at``
    RENEW = "renew"  # extend the credential
    REPLACE = "replace"  # obtain a new one (it cannot be extended any further)
    LAPSED = "lapsed"  # it has expired: it no longer works


@dataclass(frozen=True)
class Grant:
    """A credential as last granted: ``ttl_seconds`` from ``granted_at``.

    ``full_ttl_seconds`` is what an uncapped grant gives (the first TTL); a shorter grant
    means the maximum TTL is near.
    """

    granted_at: float
    ttl_seconds: float
    full_ttl_seconds: float
    renewable: bool = True

    @classmethod
    def first(cls, now: float, ttl_seconds: float, *, renewable: bool = True) -> Grant:
        return cls(now, ttl_seconds, ttl_seconds, renewable)

    @property
    def expires_at(self) -> float:
        return self.granted_at + self.ttl_seconds

    @property
    def renew_at(self) -> float:
        return self.granted_at + self.ttl_seconds * RENEW_FRACTION

    @property
    def capped(self) -> bool:
        return self.ttl_seconds + CAP_TOLERANCE_SECONDS < self.full_ttl_seconds

    def renewed(self, now: float, ttl_seconds: float) -> Grant:
        """The grant after a renewal at ``now`` that granted ``ttl_seconds``."""
        return replace(self, granted_at=now, ttl_seconds=ttl_seconds)


@dataclass(frozen=True)
class Plan:
    """What to do (``step``) and, for ``WAIT``, until when (``at``, the same clock)."""

    step: Step
    at: float
    reason: str


def plan(grant: Grant, now: float) -> Plan:
    """The next step for a credential granted as ``grant``, at ``now``."""
    if now >= grant.expires_at:
        return Plan(Step.LAPSED, now, "its TTL has run out")
    if grant.capped:
        return Plan(Step.REPLACE, now, "the last renewal was capped by the maximum TTL")
    if now < grant.renew_at:
        return Plan(Step.WAIT, grant.renew_at, "two thirds of its TTL have not passed yet")
    if not grant.renewable:
        return Plan(Step.REPLACE, now, "it is not renewable and two thirds of its TTL passed")
    return Plan(Step.RENEW, now, "two thirds of its TTL have passed")


def retry_at(grant: Grant, now: float, delay_seconds: float) -> float:
    """When to try again after a failed renewal or replacement: after ``delay_seconds``, but
    before the grant expires (half of what is left, if that is sooner)."""
    left = grant.expires_at - now
    return now + max(0.0, min(delay_seconds, left / 2))
