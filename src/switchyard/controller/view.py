"""From stored observations and records to the ``View`` that ``decide`` reads. Pure.

Also turns the topology's probe and failover sections into the loop's settings, once.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from uuid import UUID

from switchyard.domain.failover import Intent, LoopState, Policy, RegionView, RunningFailover, View
from switchyard.domain.health import (
    READINESS,
    HealthRule,
    Observation,
    assess,
    quorum_size,
    vantage_reports,
)
from switchyard.domain.region import Region
from switchyard.domain.saga import FailoverRecord
from switchyard.topology import Topology


@dataclass(frozen=True)
class LoopSettings:
    interval_seconds: float
    probe_timeout_seconds: float
    rule: HealthRule
    policy: Policy
    lease_ttl_seconds: float
    step_timeout_seconds: float
    isolation_timeout_seconds: float

    @property
    def region_statement_timeout_seconds(self) -> float:
        """The statement timeout of the controller's region connections (lock waits get half
        of it): a quarter of the step, since the fence step runs about four region statements
        one after the other, so a blocked or slow statement cannot keep a step past its
        lease."""
        return self.step_timeout_seconds / 4

    @property
    def window(self) -> timedelta:
        """How far back observations matter: the threshold's rounds plus freshness."""
        rounds = self.rule.failure_threshold + 2
        return self.rule.freshness + timedelta(seconds=self.interval_seconds * rounds)


def loop_settings(topology: Topology) -> LoopSettings:
    probes, failover = topology.probes, topology.failover
    return LoopSettings(
        interval_seconds=probes.interval_seconds,
        probe_timeout_seconds=probes.timeout_seconds,
        rule=HealthRule(
            failure_threshold=probes.failure_threshold,
            quorum_size=quorum_size(len(topology.vantages), probes.quorum),
            freshness=timedelta(seconds=probes.interval_seconds * probes.freshness_intervals),
        ),
        policy=Policy(
            automatic=failover.mode == "automatic",
            min_dwell=timedelta(seconds=failover.min_dwell_seconds),
            cooldown=timedelta(seconds=failover.cooldown_seconds),
            max_lag_seconds=failover.max_lag_seconds,
            max_generations_behind=failover.max_generations_behind,
            unknown_gates_block=failover.unknown_gates == "block",
        ),
        lease_ttl_seconds=failover.lease_ttl_seconds,
        step_timeout_seconds=failover.step_timeout_seconds,
        isolation_timeout_seconds=failover.isolation_timeout_seconds,
    )


def build_view(
    *,
    now: datetime,
    regions: Sequence[Region],
    observations: Sequence[Observation],
    rule: HealthRule,
    state: LoopState,
    running: FailoverRecord | None,
    last_failover_at: datetime | None,
    intents: Sequence[Intent],
    armed_drill: UUID | None,
    lags: Mapping[str, float | None] | None = None,
    generations_behind: Mapping[str, int | None] | None = None,
) -> View:
    """``lags``: per standby, the CDC lag from the primary the gate compares (None: unknown);
    ``generations_behind``: per standby, snapshot generations behind the primary's newest."""
    reports = vantage_reports(observations)
    views = []
    for region in regions:
        mine = [o for o in observations if o.region == region.name and now - o.at <= rule.freshness]
        readiness = max((o for o in mine if o.kind == READINESS), key=lambda o: o.at, default=None)
        with_role = max((o for o in mine if o.role is not None), key=lambda o: o.at, default=None)
        views.append(
            RegionView(
                name=region.name,
                role=region.role,
                epoch=region.epoch,
                since=region.updated_at,
                health=assess(region.name, reports, rule, now),
                ready=None if readiness is None else readiness.ok,
                ready_reason="" if readiness is None else readiness.reason,
                observed_role=None if with_role is None else with_role.role,
                observed_epoch=None if with_role is None else with_role.epoch,
                lag_seconds=(lags or {}).get(region.name),
                generations_behind=(generations_behind or {}).get(region.name),
            )
        )
    step = running.next_step() if running is not None else None
    return View(
        now=now,
        regions=tuple(views),
        state=state,
        running=None
        if running is None
        else RunningFailover(
            running.id, running.source, running.target, step.name.value if step else "finishing"
        ),
        last_failover_at=last_failover_at,
        intents=tuple(intents),
        armed_drill=armed_drill,
    )
