"""The failover decision: ``decide(view, policy) -> Decision``. Pure: no clock, no I/O.

The view is everything the loop observed in one cycle (the time included); the decision is
the next loop state, the actions to execute, a sentence for people and a stable code.

Invariants (unit and property tests hold ``decide`` to them):

- At most one failover starts per decision, and none while one is running.
- An automatic failover starts only when the primary is ``UNHEALTHY`` by quorum, the mode is
  automatic, the primary has dwelt long enough, the cooldown has passed, and the target is a
  healthy, ready standby within the lag and snapshot gates. Never automatic fail-back: a
  fenced or recovering region is never an automatic target.
- A gate whose figure is unknown blocks or passes as the policy says, and the reason says so.
- Intents (manual failover, drills) are taken oldest first, one per decision; an intent that
  cannot run is rejected with a code, never left hanging.
- The only region that may say primary is the one the control plane records primary, at its
  recorded epoch: every other region whose own database claims primary gets a
  ``ReassertFence`` (see ``_reassert_fences``), and a region fenced anew in a decision is
  never that decision's target. The running failover's source and target are left to its
  saga, whose steps write exactly those states.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from enum import StrEnum
from uuid import UUID

from switchyard.domain.audit import JsonObject
from switchyard.domain.health import Health, RegionHealth
from switchyard.domain.region import Region, RegionRole
from switchyard.errors import ConflictError


class LoopState(StrEnum):
    STEADY = "steady"  # the primary is healthy (or health is unknown: nothing to act on)
    SUSPECT = "suspect"  # failures seen, no quorum yet
    BLOCKED = "blocked"  # the primary is unhealthy but no failover may start
    FAILING_OVER = "failing_over"


ALLOWED_TRANSITIONS: frozenset[tuple[LoopState, LoopState]] = frozenset(
    {(a, b) for a in LoopState for b in LoopState if a is not LoopState.FAILING_OVER}
    # A running failover ends only through its saga: the loop leaves FAILING_OVER for any
    # state once the saga is finished, never by jumping to another failover directly.
    | {(LoopState.FAILING_OVER, b) for b in LoopState}
)


class Code(StrEnum):
    """Stable reason codes of decisions (metrics labels, tests, the audit log)."""

    HEALTHY = "healthy"
    HEALTH_UNKNOWN = "health_unknown"
    SUSPECT = "suspect"
    NO_PRIMARY = "no_primary"
    FAILOVER_STARTED = "failover_started"
    FAILOVER_IN_PROGRESS = "failover_in_progress"
    MANUAL_ONLY = "manual_only"
    COOLDOWN = "cooldown"
    DWELL = "dwell"
    NO_TARGET = "no_eligible_target"
    TARGET_NOT_READY = "target_not_ready"
    TARGET_UNHEALTHY = "target_unhealthy"
    LAG_TOO_HIGH = "lag_too_high"
    LAG_UNKNOWN = "lag_unknown"
    SNAPSHOT_BEHIND = "snapshot_behind"
    SNAPSHOT_UNKNOWN = "snapshot_unknown"
    INTENT_ACCEPTED = "intent_accepted"
    UNKNOWN_REGION = "unknown_region"
    TARGET_IS_PRIMARY = "target_is_primary"
    TARGET_NOT_STANDBY = "target_not_standby"


class Trigger(StrEnum):
    AUTOMATIC = "automatic"
    MANUAL = "manual"
    DRILL = "drill"


class DrillKind(StrEnum):
    PLANNED = "planned"  # switchover: wait for replication, demote the old primary cleanly
    UNPLANNED = "unplanned"  # fence the primary as if lost, then fail over


@dataclass(frozen=True, slots=True)
class RegionView:
    name: str
    role: RegionRole
    epoch: int
    since: datetime  # when the role was last recorded
    health: RegionHealth
    ready: bool | None = None  # its /readyz as last seen; None: not seen
    ready_reason: str = ""
    lag_seconds: float | None = None  # CDC lag to this region; None: not reported
    generations_behind: int | None = None  # snapshot generations behind the primary
    # Role/epoch the region's own database reports (from the PostgreSQL probe), if seen.
    observed_role: str | None = None
    observed_epoch: int | None = None


@dataclass(frozen=True, slots=True)
class Intent:
    """A stored request the loop has not acted on yet (oldest first in the view)."""

    id: UUID
    kind: str  # "failover" | "drill"
    target: str
    reason: str
    actor: str
    dry_run: bool = False
    drill_id: UUID | None = None
    drill_kind: DrillKind | None = None


@dataclass(frozen=True, slots=True)
class RunningFailover:
    id: UUID
    source: str
    target: str
    step: str


@dataclass(frozen=True, slots=True)
class View:
    now: datetime
    regions: tuple[RegionView, ...]
    state: LoopState = LoopState.STEADY  # as decided last cycle
    running: RunningFailover | None = None
    last_failover_at: datetime | None = None  # when the last failover finished
    intents: tuple[Intent, ...] = ()
    armed_drill: UUID | None = None  # an "external" drill waiting for the next failover

    def region(self, name: str) -> RegionView | None:
        return next((r for r in self.regions if r.name == name), None)

    def primary(self) -> RegionView | None:
        return next((r for r in self.regions if r.role is RegionRole.PRIMARY), None)


@dataclass(frozen=True, slots=True)
class Policy:
    automatic: bool = True
    min_dwell: timedelta = timedelta(0)
    cooldown: timedelta = timedelta(minutes=5)
    max_lag_seconds: float = 30.0
    max_generations_behind: int = 1
    unknown_gates_block: bool = False


# -- actions ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StartFailover:
    source: str
    target: str
    trigger: Trigger
    reason: str
    intent_id: UUID | None = None
    drill_id: UUID | None = None
    drill_kind: DrillKind | None = None
    dry_run: bool = False


@dataclass(frozen=True, slots=True)
class ResumeFailover:
    failover_id: UUID


@dataclass(frozen=True, slots=True)
class RejectIntent:
    intent_id: UUID
    code: Code
    reason: str
    drill_id: UUID | None = None


@dataclass(frozen=True, slots=True)
class ReassertFence:
    """The region's own database claims primary though the control plane records it in
    another role: write ``role`` at ``epoch`` there. ``record``: the epoch is new (above
    the database's claim), so the control store records it first, then the database."""

    region: str
    epoch: int
    role: RegionRole = RegionRole.FENCED
    record: bool = False


Action = StartFailover | ResumeFailover | RejectIntent | ReassertFence


@dataclass(frozen=True, slots=True)
class Decision:
    state: LoopState
    actions: tuple[Action, ...]
    reason: str
    code: Code
    gates: tuple[str, ...] = field(default=())  # gate verdicts, for the timeline


# -- the decision -------------------------------------------------------------------------


def decide(view: View, policy: Policy) -> Decision:
    """The next state and actions for ``view`` under ``policy``; see the module invariants."""
    fences = _reassert_fences(view)
    view = _as_fenced(view, {f.region for f in fences if f.record})
    if view.running is not None:
        r = view.running
        rejections = tuple(
            RejectIntent(
                i.id,
                Code.FAILOVER_IN_PROGRESS,
                f"failover {r.id} from {r.source} to {r.target} is running",
                i.drill_id,
            )
            for i in view.intents
        )
        return Decision(
            LoopState.FAILING_OVER,
            (*fences, ResumeFailover(r.id), *rejections),
            f"failover from {r.source} to {r.target} is at step {r.step}; continuing it",
            Code.FAILOVER_IN_PROGRESS,
        )
    if view.intents:
        return _take_intent(view, view.intents[0], fences)
    return _watch_primary(view, policy, fences)


def _reassert_fences(view: View) -> tuple[ReassertFence, ...]:
    """A fence for every region not recorded primary whose own database claims primary.

    - Claimed at an epoch older than the recorded one (or an unknown one): the recorded role
      never reached its database (unreachable at the fence), or the observation predates
      it. Write the recorded role at the recorded epoch (a no-op if it is there already).
    - Claimed at the recorded epoch or a newer one: no leader gave it that term as the
      control plane knows it (e.g. a rollback whose control record was lost). It may hold
      writes nobody else saw: fence it at an epoch above its claim, recorded in the store.

    The running failover's source and target are its saga's to write (a promotion or a
    rollback writes the database before the store), except that a recorded fence is
    re-asserted on its source: that is what the saga's fence step writes anyway.
    """
    busy = () if view.running is None else (view.running.source, view.running.target)
    fences = []
    for r in view.regions:
        if r.role is RegionRole.PRIMARY or r.observed_role != RegionRole.PRIMARY.value:
            continue
        if r.observed_epoch is None or r.observed_epoch < r.epoch:
            if r.name not in busy or r.role is RegionRole.FENCED:
                fences.append(ReassertFence(r.name, r.epoch, r.role))
        elif r.name not in busy:
            fences.append(
                ReassertFence(r.name, r.observed_epoch + 1, RegionRole.FENCED, record=True)
            )
    return tuple(fences)


def _as_fenced(view: View, names: set[str]) -> View:
    """``view`` with ``names`` fenced, as they will be once this decision's fences ran."""
    if not names:
        return view
    regions = tuple(
        replace(r, role=RegionRole.FENCED) if r.name in names else r for r in view.regions
    )
    return replace(view, regions=regions)


def _take_intent(view: View, intent: Intent, fences: tuple[Action, ...]) -> Decision:
    state = view.state if view.state is not LoopState.FAILING_OVER else LoopState.STEADY
    target = view.region(intent.target)
    primary = view.primary()
    refusal: tuple[Code, str] | None = None
    if target is None:
        refusal = (Code.UNKNOWN_REGION, f"no region named {intent.target!r}")
    elif primary is None:
        refusal = (Code.NO_PRIMARY, "no region is primary; nothing to fail over from")
    elif target.role is RegionRole.PRIMARY:
        refusal = (Code.TARGET_IS_PRIMARY, f"{target.name} is already the primary")
    elif target.role is not RegionRole.STANDBY:
        refusal = (
            Code.TARGET_NOT_STANDBY,
            f"{target.name} is {target.role.value}; only a standby can be promoted "
            "(a fenced region must be resynchronised first)",
        )
    if refusal is not None or primary is None or target is None:
        code, why = refusal or (Code.NO_PRIMARY, "no primary")
        return Decision(
            state,
            (*fences, RejectIntent(intent.id, code, why, intent.drill_id)),
            f"{intent.kind} by {intent.actor} to {intent.target} refused: {why}",
            code,
        )
    trigger = Trigger.DRILL if intent.kind == "drill" else Trigger.MANUAL
    start = StartFailover(
        primary.name,
        target.name,
        trigger,
        intent.reason,
        intent_id=intent.id,
        drill_id=intent.drill_id,
        drill_kind=intent.drill_kind,
        dry_run=intent.dry_run,
    )
    return Decision(
        LoopState.FAILING_OVER,
        (*fences, start),
        f"{intent.kind} requested by {intent.actor}: {primary.name} to {target.name}"
        f"{' (dry run)' if intent.dry_run else ''}: {intent.reason}",
        Code.INTENT_ACCEPTED,
    )


# What a primary that is not (yet) unhealthy means: no action, a state, a code, a sentence.
_NOT_DOWN = {
    Health.HEALTHY: (LoopState.STEADY, Code.HEALTHY, "primary {} is healthy: {}"),
    Health.UNKNOWN: (
        LoopState.STEADY,
        Code.HEALTH_UNKNOWN,
        "health of primary {} is unknown, so nothing moves: {}",
    ),
    Health.SUSPECT: (LoopState.SUSPECT, Code.SUSPECT, "primary {} is suspect, no quorum: {}"),
}


def _watch_primary(view: View, policy: Policy, fences: tuple[Action, ...]) -> Decision:
    primary = view.primary()
    if primary is None:
        return Decision(
            LoopState.STEADY,
            fences,
            "no region is primary; waiting for an operator",
            Code.NO_PRIMARY,
        )
    health = primary.health
    if health.status in _NOT_DOWN:
        state, code, sentence = _NOT_DOWN[health.status]
        return Decision(state, fences, sentence.format(primary.name, health.reason), code)
    down = f"primary {primary.name} is unhealthy ({health.reason})"

    def blocked(code: Code, why: str, gates: tuple[str, ...] = ()) -> Decision:
        return Decision(LoopState.BLOCKED, fences, f"{down}; {why}", code, gates)

    if not policy.automatic:
        return blocked(Code.MANUAL_ONLY, "automatic failover is off (manual mode)")
    if view.last_failover_at is not None and view.now - view.last_failover_at < policy.cooldown:
        left = policy.cooldown - (view.now - view.last_failover_at)
        return blocked(Code.COOLDOWN, f"cooling down after the last failover ({_secs(left)} left)")
    if view.now - primary.since < policy.min_dwell:
        return blocked(
            Code.DWELL,
            f"it became primary {_secs(view.now - primary.since)} ago; "
            f"minimum dwell is {_secs(policy.min_dwell)}",
        )
    standbys = [r for r in view.regions if r.role is RegionRole.STANDBY]
    if not standbys:
        return blocked(Code.NO_TARGET, "no standby region to promote (never automatic fail-back)")
    verdicts = [(r, _target_gates(r, policy)) for r in standbys]
    eligible = [r for r, (code, _) in verdicts if code is None]
    gates = tuple(f"{r.name}: {why}" for r, (_, why) in verdicts)
    if not eligible:
        first_code = next(code for _, (code, _) in verdicts if code is not None)
        return blocked(first_code, "no standby passes the gates: " + "; ".join(gates), gates)
    target = min(eligible, key=lambda r: (r.lag_seconds is None, r.lag_seconds or 0.0, r.name))
    reason = f"{down}; failing over to {target.name}"
    return Decision(
        LoopState.FAILING_OVER,
        (
            *fences,
            StartFailover(
                primary.name,
                target.name,
                Trigger.AUTOMATIC,
                reason,
                drill_id=view.armed_drill,
                drill_kind=DrillKind.UNPLANNED if view.armed_drill else None,
            ),
        ),
        reason,
        Code.FAILOVER_STARTED,
        gates,
    )


def _target_gates(r: RegionView, policy: Policy) -> tuple[Code | None, str]:
    """(None, why) when ``r`` may be promoted automatically, else the blocking code and why."""
    if r.health.status in (Health.UNHEALTHY, Health.SUSPECT, Health.UNKNOWN):
        return Code.TARGET_UNHEALTHY, f"its own health is {r.health.status.value}"
    if r.ready is not True:
        return Code.TARGET_NOT_READY, "not ready: " + (r.ready_reason or "readiness not seen")
    notes = []
    if r.lag_seconds is None:
        if policy.unknown_gates_block:
            return Code.LAG_UNKNOWN, "replication lag unknown and unknown gates block"
        notes.append("lag unknown (allowed)")
    elif r.lag_seconds > policy.max_lag_seconds:
        return Code.LAG_TOO_HIGH, f"lag {r.lag_seconds:.1f} s over {policy.max_lag_seconds:.1f} s"
    else:
        notes.append(f"lag {r.lag_seconds:.1f} s")
    if r.generations_behind is None:
        if policy.unknown_gates_block:
            return Code.SNAPSHOT_UNKNOWN, "snapshot generation unknown and unknown gates block"
        notes.append("snapshot generation unknown (allowed)")
    elif r.generations_behind > policy.max_generations_behind:
        return (
            Code.SNAPSHOT_BEHIND,
            f"snapshot {r.generations_behind} generations behind "
            f"(max {policy.max_generations_behind})",
        )
    else:
        notes.append(f"snapshot {r.generations_behind} generations behind")
    return None, "eligible: ready, " + ", ".join(notes)


def _secs(delta: timedelta) -> str:
    return f"{delta.total_seconds():.0f} s"


# -- intents as the API submits them --------------------------------------------------------


@dataclass(frozen=True, slots=True)
class IntentRequest:
    """A failover or drill asked for by an operator; the loop alone acts on it.

    ``fault`` (drills): "fence" — the loop fences the primary as if lost, then fails over;
    "external" — the drill is armed and measures the next automatic failover to ``target``
    (the runbook breaks the primary itself, e.g. kills its runtime).
    """

    kind: str  # "failover" | "drill"
    target: str
    reason: str
    actor: str
    dry_run: bool = False
    idempotency_key: str | None = None
    drill_kind: DrillKind | None = None
    fault: str = "fence"
    objectives: JsonObject | None = None


@dataclass(frozen=True, slots=True)
class Submitted:
    """What the API answers: the failover id (also the intent's) and, for drills, the drill's."""

    failover_id: UUID
    drill_id: UUID | None
    created: bool  # False: the same idempotency key was seen before; nothing new stored


def check_target(target: Region) -> None:
    """Refuse (ConflictError with a code) a target an intent cannot promote."""
    if target.role is RegionRole.PRIMARY:
        raise ConflictError(f"{target.name} is already the primary", "target_is_primary")
    if target.role is not RegionRole.STANDBY:
        raise ConflictError(
            f"{target.name} is {target.role.value}; only a standby can be promoted "
            "(a fenced region must be resynchronised first)",
            "target_not_standby",
        )
