"""Region health from many vantage points: consecutive failures, freshness, quorum. Pure.

Invariants:

- A region is ``UNHEALTHY`` only when at least ``quorum_size`` *fresh* vantage points each saw
  ``failure_threshold`` consecutive failed rounds. One vantage, however sure, never suffices
  when the quorum is larger (a partitioned controller cannot fail a region over alone).
- When fewer than ``quorum_size`` vantage points are fresh, health is ``UNKNOWN`` and nothing
  may act on it (fail-safe: a blind control plane leaves routing as it is).
- A round fails when any of its health probes failed; readiness is reported apart.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from itertools import pairwise

READINESS = "readiness"
"""Observation kind of a region's ``/readyz``: gates a target, never counts as health."""


class Health(StrEnum):
    HEALTHY = "healthy"
    SUSPECT = "suspect"  # failures seen, short of the threshold or the quorum
    UNHEALTHY = "unhealthy"
    UNKNOWN = "unknown"  # not enough fresh vantage points to tell


@dataclass(frozen=True, slots=True)
class Observation:
    """One probe's result at one vantage point in one round (``at`` is the round's time)."""

    vantage: str
    region: str
    kind: str
    ok: bool
    code: str
    reason: str
    at: datetime
    latency_ms: float | None = None
    role: str | None = None
    epoch: int | None = None


@dataclass(frozen=True, slots=True)
class VantageReport:
    """What one vantage point last saw of one region: its recent rounds, newest first."""

    vantage: str
    region: str
    last_at: datetime
    consecutive_failures: int
    code: str  # of the newest round: "ok" or the first failing probe's code
    reason: str


@dataclass(frozen=True, slots=True)
class RegionHealth:
    status: Health
    failing: tuple[str, ...]  # fresh vantages at or past the threshold
    fresh: tuple[str, ...]
    needed: int
    reason: str


@dataclass(frozen=True, slots=True)
class HealthRule:
    failure_threshold: int
    quorum_size: int
    freshness: timedelta


def quorum_size(vantages: int, quorum: str) -> int:
    """How many vantage points must agree: a strict majority, or all of them."""
    if vantages < 1:
        raise ValueError("at least one vantage point is needed")
    return vantages if quorum == "all" else vantages // 2 + 1


Rounds = dict[tuple[str, str], list[tuple[datetime, list[Observation]]]]


def _rounds(observations: Iterable[Observation]) -> Rounds:
    """Health observations grouped per (vantage, region) into rounds by ``at``, newest first."""
    grouped: dict[tuple[str, str], dict[datetime, list[Observation]]] = {}
    for o in observations:
        if o.kind != READINESS:
            grouped.setdefault((o.vantage, o.region), {}).setdefault(o.at, []).append(o)
    return {
        key: sorted(by_time.items(), key=lambda item: item[0], reverse=True)
        for key, by_time in grouped.items()
    }


def _failing_streak(newest_first: list[tuple[datetime, list[Observation]]]) -> list[datetime]:
    """Times of the failed rounds from the newest back to the first good one (newest first);
    a round failed when any of its probes failed."""
    streak = []
    for at, probes in newest_first:
        if all(p.ok for p in probes):
            break
        streak.append(at)
    return streak


def vantage_reports(observations: Iterable[Observation]) -> list[VantageReport]:
    """Fold probe results into one report per (vantage, region).

    Rounds are grouped by ``at``; a round failed when any non-readiness probe in it failed.
    ``consecutive_failures`` counts failed rounds from the newest back to the first good one.
    """
    reports = []
    for (vantage, region), newest_first in _rounds(observations).items():
        last_at, last = newest_first[0]
        failed = [p for p in last if not p.ok]
        code = failed[0].code if failed else "ok"
        reason = "; ".join(f"{p.kind}: {p.reason}" for p in failed) if failed else "all probes ok"
        failures = len(_failing_streak(newest_first))
        reports.append(VantageReport(vantage, region, last_at, failures, code, reason))
    return sorted(reports, key=lambda r: (r.region, r.vantage))


def assess(
    region: str, reports: Sequence[VantageReport], rule: HealthRule, now: datetime
) -> RegionHealth:
    """The region's health by quorum of fresh vantage points at ``now``."""
    mine = [r for r in reports if r.region == region]
    fresh = sorted(r.vantage for r in mine if now - r.last_at <= rule.freshness)
    failing = sorted(
        r.vantage
        for r in mine
        if r.vantage in fresh and r.consecutive_failures >= rule.failure_threshold
    )
    seen_failing = sorted(r.vantage for r in mine if r.vantage in fresh and r.consecutive_failures)
    needed = rule.quorum_size
    if len(failing) >= needed:
        return RegionHealth(
            Health.UNHEALTHY,
            tuple(failing),
            tuple(fresh),
            needed,
            f"{len(failing)} of {len(fresh)} fresh vantage points ({', '.join(failing)}) saw "
            f"{rule.failure_threshold} consecutive failures; {needed} needed",
        )
    if len(fresh) < needed:
        return RegionHealth(
            Health.UNKNOWN,
            tuple(failing),
            tuple(fresh),
            needed,
            f"only {len(fresh)} fresh vantage points ({', '.join(fresh) or 'none'}); "
            f"{needed} needed to judge",
        )
    if seen_failing:
        return RegionHealth(
            Health.SUSPECT,
            tuple(failing),
            tuple(fresh),
            needed,
            f"failures seen from {', '.join(seen_failing)}; {len(failing)} at the threshold, "
            f"{needed} needed",
        )
    return RegionHealth(
        Health.HEALTHY, (), tuple(fresh), needed, f"{len(fresh)} fresh vantage points see it well"
    )


def failure_onset(
    observations: Iterable[Observation], region: str, before: datetime
) -> datetime | None:
    """When the failure streak that ``region`` is in at ``before`` began, across vantages.

    For each vantage, walk its rounds back from ``before`` while they fail; the onset is the
    earliest failed round of any such streak. None when no vantage saw it failing.
    """
    mine = (o for o in observations if o.region == region and o.at <= before)
    onsets = [
        streak[-1] for rounds in _rounds(mine).values() if (streak := _failing_streak(rounds))
    ]
    return min(onsets) if onsets else None


# Probe codes that mean nothing answered; every other code, failures included, came from it.
NO_ANSWER = frozenset({"timeout", "connect_refused"})


def answered(o: Observation) -> bool:
    """Whether the probe reached something of its region that answered (a 503 did)."""
    return o.ok or o.code not in NO_ANSWER


def last_sign_of_life(
    observations: Iterable[Observation],
    region: str,
    *,
    since: datetime,
    until: datetime,
    gap: timedelta,
) -> datetime | None:
    """The newest time in [``since``, ``until``] at which ``region`` may have answered a probe,
    as far as the observations tell: the newest round in which it answered anything, or the
    end of the newest span longer than ``gap`` in which nobody observed it at all.

    Any probe counts, readiness included, and a failed one too when something answered it (a
    503, a wrong canary answer, a database error): whatever answers may still be taking
    writes, and a runtime that answers probes is in contact with the control plane (it keeps
    renewing its login). Unobserved is not silent: probes may have reached it while nothing
    was recorded (the control store down), so a span without observations ends in a possible
    answer; the spans from ``since`` to the first observation and from the last to ``until``
    count too. A wait measured from here is never shorter than one from the last time a
    quorum saw it healthy. None: observed throughout, and it never answered.
    """
    rounds: dict[datetime, bool] = {}
    for o in observations:
        if o.region == region and since <= o.at <= until:
            rounds[o.at] = rounds.get(o.at, False) or answered(o)
    candidates = [at for at, ok in rounds.items() if ok]
    bounds = [since, *sorted(rounds), until]
    candidates += [later for earlier, later in pairwise(bounds) if later - earlier > gap]
    return max(candidates, default=None)
