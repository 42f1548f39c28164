"""The controller loop, the only actor: observe → decide (pure) → execute (fenced) → record.

Every controller (one per vantage point) probes every region each interval and stores what it
saw. The one holding the leader lease then builds the view from every vantage's observations,
decides, and executes. Any controller can take over: a failover in progress is resumed from its
stored step. If the control-plane store is unreachable, nobody acts (fail-safe).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime

from switchyard.controller.probing import run_round
from switchyard.controller.saga import SagaRunner
from switchyard.controller.view import LoopSettings, build_view
from switchyard.domain.failover import (
    Decision,
    DrillKind,
    ReassertFence,
    RejectIntent,
    ResumeFailover,
    StartFailover,
    decide,
)
from switchyard.domain.health import READINESS, Observation, failure_onset
from switchyard.domain.lease import Lease
from switchyard.domain.probe import ProbeResult
from switchyard.domain.region import Region, RegionRole
from switchyard.domain.report import drill_report, fault_search_start
from switchyard.domain.saga import FailoverRecord, FailoverState, steps_for
from switchyard.errors import FencingError, TransientError
from switchyard.observability.logging import log_event
from switchyard.observability.metrics import ControllerMetrics
from switchyard.ports.clock import Clock
from switchyard.ports.control import ControlStore
from switchyard.ports.lease import LeaseStore
from switchyard.ports.probe import Probe
from switchyard.ports.regions import RegionDatabases
from switchyard.ports.replication import ReplicationMonitor
from switchyard.snapshots.status import SnapshotWatch, snapshot_figures

_log = logging.getLogger(__name__)
LEASE_NAME = "controller"


@dataclass(frozen=True)
class CycleReport:
    """What one cycle did; ``decision`` only when this controller led."""

    at: datetime
    observations: int
    leader: bool
    decision: Decision | None = None
    error: str | None = None
    finished: tuple[FailoverRecord, ...] = field(default=())


@dataclass(frozen=True)
class ControllerParts:
    vantage: str
    store: ControlStore
    leases: LeaseStore
    health_probes: Sequence[Probe]
    readiness_probes: Sequence[Probe]
    saga: SagaRunner
    regions: RegionDatabases
    clock: Clock
    settings: LoopSettings
    metrics: ControllerMetrics | None = None
    replication: ReplicationMonitor | None = None  # None: lag gates read "unknown"
    snapshots: SnapshotWatch | None = None  # None: snapshot gates read "unknown"


class Controller:
    def __init__(self, parts: ControllerParts) -> None:
        self._p = parts

    async def run(self, stop: asyncio.Event) -> None:
        """Cycle every interval until ``stop`` is set."""
        interval = self._p.settings.interval_seconds
        loop = asyncio.get_running_loop()
        while not stop.is_set():
            started = loop.time()
            await self.cycle()
            delay = max(0.0, interval - (loop.time() - started))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=delay)

    async def cycle(self) -> CycleReport:
        p = self._p
        at = p.clock.now()
        probes = [*p.health_probes, *p.readiness_probes]
        results = await run_round(probes, p.settings.probe_timeout_seconds)
        readiness = set(range(len(p.health_probes), len(probes)))
        observations = [
            _observation(p.vantage, r, at, READINESS if i in readiness else r.kind.value)
            for i, r in enumerate(results)
        ]
        if p.metrics is not None:
            p.metrics.observed(p.vantage, observations)
        return await asyncio.to_thread(self._after_probing, at, observations)

    def _after_probing(self, at: datetime, observations: list[Observation]) -> CycleReport:
        p = self._p
        try:
            p.store.record_observations(observations)
            lease = p.leases.acquire(LEASE_NAME, p.vantage, p.settings.lease_ttl_seconds)
        except TransientError as exc:
            return self._stood_down(at, len(observations), f"control store unreachable: {exc}")
        if p.metrics is not None:
            p.metrics.leader.labels(vantage=p.vantage).set(1 if lease else 0)
        if lease is None:
            return CycleReport(at, len(observations), leader=False)
        try:
            decision, finished = self._lead(at, lease)
        except FencingError as exc:
            return self._stood_down(at, len(observations), f"lost the lease: {exc}")
        except TransientError as exc:
            return self._stood_down(at, len(observations), f"stopped acting: {exc}")
        return CycleReport(at, len(observations), True, decision, finished=finished)

    def _stood_down(self, at: datetime, count: int, why: str) -> CycleReport:
        log_event(
            _log, "controller.idle", level=logging.WARNING, vantage=self._p.vantage, reason=why
        )
        if self._p.metrics is not None:
            self._p.metrics.leader.labels(vantage=self._p.vantage).set(0)
        return CycleReport(at, count, leader=False, error=why)

    # -- leading: decide, execute, record -------------------------------------------------
    def _lead(self, at: datetime, lease: Lease) -> tuple[Decision, tuple[FailoverRecord, ...]]:
        p = self._p
        store = p.store
        status = store.loop_status()
        since = at - p.settings.window
        armed = store.armed_drill()
        regions = store.regions()
        view = build_view(
            now=at,
            regions=regions,
            observations=store.observations_since(since),
            rule=p.settings.rule,
            state=status.state,
            running=store.running_failover(),
            last_failover_at=store.last_failover_finished_at(),
            intents=store.pending_intents(),
            armed_drill=armed.id if armed else None,
            lags=self._lags(regions),
            generations_behind=self._generations_behind(regions, at),
        )
        decision = decide(view, p.settings.policy)
        token = lease.fencing_token
        store.record_decision(decision, holder=p.vantage, token=token, at=at)
        if p.metrics is not None:
            p.metrics.decisions.labels(code=decision.code.value).inc()
        if decision.code.value != status.code:
            log_event(
                _log,
                "controller.decision",
                vantage=p.vantage,
                state=decision.state.value,
                code=decision.code.value,
                reason=decision.reason,
            )
        finished = []
        for action in decision.actions:
            p.leases.check(lease)
            done = self._execute(action, lease)
            if done is not None:
                finished.append(done)
        return decision, tuple(finished)

    def _lags(self, regions: Sequence[Region]) -> dict[str, float | None]:
        """The gate's lag for each standby, from the primary (none without a monitor)."""
        monitor = self._p.replication
        primary = next((r.name for r in regions if r.role is RegionRole.PRIMARY), None)
        if monitor is None or primary is None:
            return {}
        lags: dict[str, float | None] = {}
        for region in regions:
            if region.role is RegionRole.STANDBY:
                lag = monitor.lag(primary, region.name)
                lags[region.name] = lag.gate_seconds()
                if self._p.metrics is not None:
                    self._p.metrics.replication(lag)
        return lags

    def _generations_behind(self, regions: Sequence[Region], at: datetime) -> dict[str, int | None]:
        """Per standby, snapshot generations served behind the primary's newest (none without
        a watch)."""
        watch = self._p.snapshots
        primary = next((r.name for r in regions if r.role is RegionRole.PRIMARY), None)
        if watch is None or primary is None:
            return {}
        figures = snapshot_figures(watch.statuses(), primary, at)
        if self._p.metrics is not None:
            for region, f in figures.items():
                self._p.metrics.replication_gauges.observe_snapshot(region, f)
        return {
            r.name: figures[r.name].generations_behind
            for r in regions
            if r.role is RegionRole.STANDBY and r.name in figures
        }

    def _execute(
        self, action: StartFailover | ResumeFailover | RejectIntent | ReassertFence, lease: Lease
    ) -> FailoverRecord | None:
        p = self._p
        token = lease.fencing_token
        match action:
            case RejectIntent():
                p.store.reject_intent(action, holder=p.vantage, token=token)
                return None
            case ReassertFence():
                self._refence(action, token)
                return None
            case StartFailover():
                record = p.store.start_failover(
                    action,
                    steps=[s.value for s in steps_for(action.drill_kind is DrillKind.PLANNED)],
                    holder=p.vantage,
                    token=token,
                    at=p.clock.now(),
                )
            case ResumeFailover(failover_id=failover_id):
                record = p.store.failover(failover_id)
        record = p.saga.advance(record, lease)
        if (
            record.state is FailoverState.RUNNING
            and record.next_step() is None
            and not record.rolling_back
        ):
            record = self._finish(record, token)
        if record.state is not FailoverState.RUNNING and p.metrics is not None:
            p.metrics.failovers.labels(
                trigger=record.trigger.value, result=record.state.value
            ).inc()
        return record if record.state is not FailoverState.RUNNING else None

    def _refence(self, fence: ReassertFence, token: int) -> None:
        """Write ``fence`` to the region's database (and first to the control store when its
        epoch is new). An unreachable or refusing region database is logged and retried by
        the next decision; a lost lease or an unreachable store stops the cycle."""
        p = self._p
        region, role, epoch = fence.region, fence.role, fence.epoch
        if fence.record:
            p.store.set_region(
                region,
                role=role,
                epoch=epoch,
                token=token,
                actor=p.vantage,
                reason=f"{region}'s database claimed primary at epoch {epoch - 1}, "
                "a term the control plane never gave it",
            )
        try:
            now = p.regions.state(region)
            if now is not None and (now.role, now.epoch) == (role, epoch):
                return  # already there (the observation that asked for it was older)
            p.regions.set_state(region, role, epoch, token=token)
        except (TransientError, FencingError) as exc:
            log_event(_log, "controller.refence_failed", region=region, reason=str(exc))
            return
        log_event(
            _log,
            "controller.refence",
            level=logging.WARNING,
            region=region,
            role=role.value,
            epoch=epoch,
            new_epoch=fence.record,
        )
        p.store.audit(
            actor=p.vantage,
            action="region.refence",
            region=region,
            reason=f"{region}'s database said primary; {role.value} at epoch {epoch}",
            code="fence_reasserted",
            after={"role": role.value, "epoch": epoch},
        )

    def _finish(self, record: FailoverRecord, token: int) -> FailoverRecord:
        p = self._p
        drill = p.store.drill(record.drill_id) if record.drill_id is not None else None
        since = fault_search_start(record, drill, p.settings.window)
        fault_at = (
            None
            if since is None
            else failure_onset(p.store.observations_since(since), record.source, record.started_at)
        )
        objectives = drill.objectives if drill is not None else None
        done = FailoverState.SUCCEEDED
        return p.store.finish_failover(
            record.id,
            state=done,
            reason=f"{record.target} serves at epoch {record.epoch}"
            + (" (dry run: nothing changed)" if record.dry_run else ""),
            at=p.clock.now(),
            token=token,
            report=drill_report(replace(record, state=done), fault_at, objectives),
        )


def _observation(vantage: str, r: ProbeResult, at: datetime, kind: str) -> Observation:
    return Observation(
        vantage=vantage,
        region=r.target,
        kind=kind,
        ok=r.ok,
        code=r.code,
        reason=r.reason,
        at=at,
        latency_ms=r.latency_ms,
        role=r.role,
        epoch=r.epoch,
    )
