"""When a fenced source has provably stopped accepting writes, so its target may be promoted. Pure.

An unplanned failover may promote the target only with one of three proofs:

- ``database``: the source's own database recorded the fence, so every later write there is
  refused (the runtime checks the role inside each write);
- ``leases_revoked``: Vault revoked every database login of the source's runtime, which ends
  its connections and its ability to log in again;
- ``isolation_timeout``: nothing of the source has answered any vantage point's probe for at
  least the isolation timeout, which the topology sets to at least the longest a cut-off
  runtime keeps a database login (it stops renewing when controllers stop probing it, then
  the login lapses within one TTL): a runtime cut off that long has no login left to write
  with.

Without one of them the fence step fails and stays resumable: every cycle tries the database
and Vault again and re-measures the wait. Promoting anyway could leave two primaries.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum


class FenceProof(StrEnum):
    DATABASE = "database"
    LEASES_REVOKED = "leases_revoked"
    ISOLATION_TIMEOUT = "isolation_timeout"


@dataclass(frozen=True, slots=True)
class FenceVerdict:
    """``proof`` None: not proven yet, ``promotable_at`` is when the wait ends if the source
    stays silent (None once proven)."""

    proof: FenceProof | None
    reason: str
    promotable_at: datetime | None = None


def fence_verdict(
    *,
    source: str,
    database_fenced: bool,
    leases_revoked: bool,
    last_sign_of_life: datetime | None,
    searched_since: datetime,
    isolation_timeout: timedelta,
    now: datetime,
) -> FenceVerdict:
    """Which proof holds, strongest first.

    ``last_sign_of_life`` is the newest time since ``searched_since`` that the source may
    have answered a probe (``domain.health.last_sign_of_life``); None means none in that span,
    so its silence is at least that old.
    """
    if database_fenced:
        return FenceVerdict(FenceProof.DATABASE, f"{source}'s database recorded the fence")
    if leases_revoked:
        return FenceVerdict(
            FenceProof.LEASES_REVOKED, f"every Vault database lease of {source} was revoked"
        )
    anchor = searched_since if last_sign_of_life is None else last_sign_of_life
    promotable_at = anchor + isolation_timeout
    limit = f"isolation timeout {isolation_timeout.total_seconds():.0f} s"
    seen = (
        f"nothing of {source} answered since {searched_since.isoformat()}"
        if last_sign_of_life is None
        else f"{source} may have answered as late as {last_sign_of_life.isoformat()}"
    )
    if now >= promotable_at:
        return FenceVerdict(FenceProof.ISOLATION_TIMEOUT, f"{seen}: {limit} passed")
    wait = (promotable_at - now).total_seconds()
    return FenceVerdict(
        None,
        f"not promoting: the fence is unconfirmed ({source}'s database did not record it and "
        f"its Vault leases were not revoked) and {seen}; {limit}, {wait:.0f} s to go",
        promotable_at,
    )
