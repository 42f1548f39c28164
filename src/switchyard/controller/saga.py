"""The failover saga's effects, one idempotent function per step, and ``advance`` that runs
them in order, persisting each step before and after it runs.

Only the leader calls ``advance``; it renews the lease before every step and the store checks
the fencing token on every write, so a deposed leader stops at the next step at the latest.
The rules for failures (abort, roll back, or stay resumable) are in ``domain/saga.py``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from switchyard.controller.gslb import answers, route_to, verify_answers
from switchyard.domain.audit import JsonObject
from switchyard.domain.dns import single
from switchyard.domain.fence import FenceVerdict, fence_verdict
from switchyard.domain.lease import Lease
from switchyard.domain.region import RegionRole
from switchyard.domain.replication import loss_at_fence
from switchyard.domain.saga import (
    FailoverRecord,
    FailoverState,
    Step,
    StepOutcome,
    StepStatus,
    aborts_on_failure,
    rolls_back_on_failure,
)
from switchyard.errors import FencingError, SwitchyardError, TransientError
from switchyard.observability.logging import log_event
from switchyard.ports.clock import Clock
from switchyard.ports.control import ControlStore
from switchyard.ports.credentials import CredentialLeases
from switchyard.ports.dns import DnsProvider
from switchyard.ports.lease import LeaseStore
from switchyard.ports.regions import RegionChecks, RegionDatabases
from switchyard.ports.replication import ReplicationMonitor

_log = logging.getLogger(__name__)
POLL_SECONDS = 0.05


@dataclass(frozen=True)
class Gslb:
    """The GSLB record and what it answers for each region."""

    name: str  # fully qualified owner name, e.g. chat.gslb.example.
    ttl: int
    addresses: Mapping[str, str]  # region -> address
    providers: Sequence[DnsProvider]


@dataclass(frozen=True)
class SagaParts:
    store: ControlStore
    leases: LeaseStore
    regions: RegionDatabases
    checks: RegionChecks
    gslb: Gslb
    credentials: CredentialLeases | None
    lease_roles: Mapping[str, str]  # region -> Vault database role of its runtime
    clock: Clock
    step_timeout_seconds: float
    lease_ttl_seconds: float
    on_step: Callable[[FailoverRecord, Step, StepOutcome, float], None] = lambda *_: None
    # CDC lag between regions; a planned switchover waits for the target to apply everything
    # the source wrote up to its fence. None: no CDC (the wait compares stored turns instead).
    replication: ReplicationMonitor | None = None
    # An unconfirmed fence proves the source stopped only after nobody had any answer
    # from it for this long (the topology's ``failover.isolation_timeout_seconds``).
    isolation_timeout_seconds: float = 3600.0
    # A span this long without any observation of the source is not taken for silence
    # (probes may have reached it unrecorded): the loop's freshness.
    observation_gap_seconds: float = 30.0


class SagaRunner:
    def __init__(self, parts: SagaParts) -> None:
        self._p = parts

    # -- the loop's entry point ----------------------------------------------------------
    def advance(self, record: FailoverRecord, lease: Lease) -> FailoverRecord:
        """Run the failover's remaining steps until it finishes or a step fails.

        Returns the record as stored. Raises FencingError as soon as the lease is lost.
        """
        p = self._p
        token = lease.fencing_token
        while (step := record.next_step()) is not None:
            self._renew(lease, f"step {step.name.value}")
            record = p.store.update_step(
                record.id,
                step.seq,
                status=StepStatus.RUNNING,
                reason=f"attempt {step.attempts + 1}",
                at=p.clock.now(),
                token=token,
            )
            started = time.monotonic()
            outcome = self._run(step.name, record, token)
            seconds = time.monotonic() - started
            status = (
                StepStatus.SKIPPED
                if outcome.ok and outcome.code == "dry_run"
                else StepStatus.SUCCEEDED
                if outcome.ok
                else StepStatus.FAILED
            )
            record = p.store.update_step(
                record.id,
                step.seq,
                status=status,
                reason=outcome.reason,
                at=p.clock.now(),
                detail=outcome.detail,
                token=token,
            )
            p.on_step(record, step.name, outcome, seconds)
            log_event(
                _log,
                "saga.step",
                failover=str(record.id),
                step=step.name.value,
                ok=outcome.ok,
                code=outcome.code,
                reason=outcome.reason,
                seconds=round(seconds, 4),
            )
            if not outcome.ok:
                if rolls_back_on_failure(step.name):
                    continue  # stored as failed: from now on the next step is the rollback
                if aborts_on_failure(step.name):
                    return p.store.finish_failover(
                        record.id,
                        state=FailoverState.ABORTED,
                        reason=f"{step.name.value} failed: {outcome.reason}",
                        at=p.clock.now(),
                        token=token,
                    )
                return record  # resumable: the next cycle retries this step
            if step.name is Step.WAIT_REPLICATION:
                record = self._skip_rollback(record, token)
        if record.rolling_back:
            # Also reached when an earlier cycle restored the source but could not record the
            # end (the control store went away): the rollback must still end here.
            self._renew(lease, "ending the rollback")
            return self._rolled_back(record, token)
        return record

    def _renew(self, lease: Lease, before: str) -> None:
        p = self._p
        renewed = p.leases.acquire(lease.name, lease.holder, p.lease_ttl_seconds)
        if renewed is None or renewed.fencing_token != lease.fencing_token:
            raise FencingError(f"lease {lease.name!r} lost before {before}")

    def _skip_rollback(self, record: FailoverRecord, token: int) -> FailoverRecord:
        restore = record.step(Step.RESTORE_SOURCE)
        if restore is None or restore.status is not StepStatus.PENDING:
            return record
        return self._p.store.update_step(
            record.id,
            restore.seq,
            status=StepStatus.SKIPPED,
            reason="replication caught up: nothing to roll back",
            at=self._p.clock.now(),
            token=token,
        )

    def _rolled_back(self, record: FailoverRecord, token: int) -> FailoverRecord:
        wait = record.step(Step.WAIT_REPLICATION)
        return self._p.store.finish_failover(
            record.id,
            state=FailoverState.ABORTED,
            reason=f"{Step.WAIT_REPLICATION.value} failed: {wait.reason if wait else '?'}; "
            f"rolled back: {record.source} is primary again at epoch {record.rollback_epoch}",
            at=self._p.clock.now(),
            token=token,
        )

    # -- steps ---------------------------------------------------------------------------
    def _run(self, step: Step, record: FailoverRecord, token: int) -> StepOutcome:
        # Deadlines on the injected clock, so tests with a fake clock never wait for real.
        deadline = self._p.clock.now() + timedelta(seconds=self._p.step_timeout_seconds)
        if record.dry_run and step is not Step.CHECK_READINESS:
            return StepOutcome(True, "dry run: " + _would(step, record, self._p.gslb), "dry_run")
        try:
            match step:
                case Step.CHECK_READINESS:
                    return self._until(deadline, lambda: self._check_readiness(record))
                case Step.FENCE_SOURCE:
                    return self._fence(record, token)
                case Step.WAIT_REPLICATION:
                    return self._wait_replication(record, deadline)
                case Step.RESTORE_SOURCE:
                    return self._restore_source(record, token)
                case Step.PROMOTE_TARGET:
                    return self._promote(record, token)
                case Step.UPDATE_DNS:
                    return self._update_dns(record)
                case Step.VERIFY_DNS:
                    return self._until(deadline, lambda: self._dns_answers(record))
                case Step.VERIFY_PROBE:
                    return self._until(deadline, lambda: self._first_good_answer(record))
        except FencingError:
            raise
        except SwitchyardError as exc:
            return StepOutcome(False, str(exc), exc.code)
        raise AssertionError(f"unknown step {step}")  # pragma: no cover

    def _until(self, deadline: datetime, attempt: Callable[[], StepOutcome]) -> StepOutcome:
        """Retry ``attempt`` until it succeeds or the step's deadline passes."""
        while True:
            try:
                outcome = attempt()
            except TransientError as exc:
                outcome = StepOutcome(False, str(exc), exc.code)
            if outcome.ok or self._p.clock.now() >= deadline:
                if not outcome.ok:
                    return StepOutcome(
                        False,
                        f"timed out after {self._p.step_timeout_seconds:.0f} s: {outcome.reason}",
                        "timeout",
                        outcome.detail,
                    )
                return outcome
            self._p.clock.sleep(POLL_SECONDS)

    def _check_readiness(self, record: FailoverRecord) -> StepOutcome:
        ready = self._p.checks.readiness(record.target)
        state = self._p.regions.state(record.target)
        if not ready.ok:
            return StepOutcome(False, ready.reason, ready.code)
        # Only a standby: a fenced region (or one whose database claims primary) may hold
        # writes the others never saw.
        if state is None or state.role is not RegionRole.STANDBY:
            role = state.role.value if state else "unrecorded"
            return StepOutcome(False, f"{record.target}'s database says {role}", "target_state")
        return StepOutcome(
            True,
            f"{record.target} ready; its database says {state.role.value} at epoch {state.epoch}",
        )

    def _fence(self, record: FailoverRecord, token: int) -> StepOutcome:
        """Fence the source at the failover's epoch: control record, its database, its leases.

        A planned switchover demotes the source to standby (it lost nothing); otherwise it is
        fenced. The step succeeds only with a proof that the source stopped taking writes
        (``domain/fence.py``): its database recorded the fence, Vault revoked its logins, or
        nothing of it answered a probe for the isolation timeout. Without one it fails,
        saying why, and is retried every cycle: the target is never promoted unfenced.
        """
        p = self._p
        role = RegionRole.STANDBY if record.planned else RegionRole.FENCED
        p.store.set_region(
            record.source,
            role=role,
            epoch=record.epoch,
            token=token,
            actor=record.actor,
            reason=f"fenced by failover {record.id}: {record.reason}",
        )
        fenced_at = p.clock.now()
        detail: dict[str, str | int | float | bool | None] = {
            "role": role.value,
            "epoch": record.epoch,
            "fenced_at": fenced_at.isoformat(),
        }
        notes = [f"{record.source} recorded {role.value} at epoch {record.epoch}"]
        database_fenced = self._fence_database(record, role, token, notes)
        leases_revoked = self._revoke_leases(record, notes)
        detail["database_fenced"] = database_fenced
        if leases_revoked is not None:
            detail["leases_revoked"] = leases_revoked
        verdict = self._fence_verdict(record, database_fenced, bool(leases_revoked), fenced_at)
        detail["fence_confirmed"] = database_fenced
        detail["fence_proof"] = None if verdict.proof is None else verdict.proof.value
        notes.append(verdict.reason)
        if verdict.proof is None:
            assert verdict.promotable_at is not None
            detail["promotable_at"] = verdict.promotable_at.isoformat()
            return StepOutcome(False, "; ".join(notes), "fence_unconfirmed", detail)
        if not record.planned:  # a planned switchover's loss is measured by its wait
            detail.update(self._loss_at_fence(record, fenced_at))
        return StepOutcome(True, "; ".join(notes), detail=detail)

    def _fence_database(
        self, record: FailoverRecord, role: RegionRole, token: int, notes: list[str]
    ) -> bool:
        """Record the fence in the source's own database; False when it cannot be reached
        (a planned switchover then fails: its source must be demoted, not presumed gone)."""
        try:
            self._p.regions.set_state(record.source, role, record.epoch, token=token)
        except TransientError as exc:
            if record.planned:
                raise
            notes.append(f"its database is unreachable ({exc}); fence re-asserted when it returns")
            return False
        notes.append("its database refuses writes")
        return True

    def _revoke_leases(self, record: FailoverRecord, notes: list[str]) -> bool | None:
        """Revoke the source runtime's Vault database logins; None when there are none to
        revoke (no Vault role, or a planned switchover, whose source stays a healthy standby
        with valid logins)."""
        p = self._p
        lease_role = p.lease_roles.get(record.source)
        if p.credentials is None or lease_role is None or record.planned:
            return None
        try:
            p.credentials.revoke_role(lease_role)
        except TransientError as exc:
            notes.append(f"Vault unreachable, leases not revoked ({exc})")
            return False
        notes.append(f"Vault leases of {lease_role} revoked")
        return True

    def _fence_verdict(
        self, record: FailoverRecord, database_fenced: bool, leases_revoked: bool, now: datetime
    ) -> FenceVerdict:
        timeout = timedelta(seconds=self._p.isolation_timeout_seconds)
        since = now - timeout
        alive = None
        if not (database_fenced or leases_revoked):
            alive = self._p.store.last_sign_of_life(
                record.source,
                since=since,
                until=now,
                gap=timedelta(seconds=self._p.observation_gap_seconds),
            )
        return fence_verdict(
            source=record.source,
            database_fenced=database_fenced,
            leases_revoked=leases_revoked,
            last_sign_of_life=alive,
            searched_since=since,
            isolation_timeout=timeout,
            now=now,
        )

    def _loss_at_fence(
        self, record: FailoverRecord, fenced_at: datetime
    ) -> dict[str, str | int | float | bool | None]:
        """RPO at the fence: from CDC positions when they tell (no rows read), else by
        comparing the keys of the source's newest turns; unknown when neither can be read."""
        p = self._p
        if p.replication is not None:
            try:
                fence_lsn: int | None = p.replication.wal_position(record.source)
            except TransientError:
                fence_lsn = None
            lag = p.replication.lag(record.source, record.target)
            loss = loss_at_fence(lag, fence_lsn, fenced_at)
            if loss is not None:
                return loss.detail()
        try:
            gap = p.regions.unreplicated(record.source, record.target)
        except TransientError:
            return {"rpo_from": "unknown", "unreplicated_writes": None, "rpo_seconds": None}
        oldest = gap.oldest_missing_at
        rpo = 0.0 if oldest is None else max(0.0, (fenced_at - oldest).total_seconds())
        return {
            "rpo_from": "keys",
            "keys_compared": gap.compared,
            "unreplicated_writes": gap.missing,
            "rpo_seconds": rpo,
        }

    def _wait_replication(self, record: FailoverRecord, deadline: datetime) -> StepOutcome:
        monitor = self._p.replication
        if monitor is None:
            return self._until(deadline, lambda: self._caught_up(record))
        # The source is fenced: nothing it accepts from now on is a client's write, so
        # everything up to this position is everything the target must hold.
        fence_lsn = monitor.wal_position(record.source)
        return self._until(deadline, lambda: self._applied_through(record, fence_lsn))

    def _applied_through(self, record: FailoverRecord, fence_lsn: int) -> StepOutcome:
        assert self._p.replication is not None
        lag = self._p.replication.lag(record.source, record.target)
        detail: JsonObject = {
            "fence_lsn": fence_lsn,
            "applied_lsn": lag.applied_lsn,
            "lag_bytes": lag.lag_bytes,
        }
        if lag.gap is not None:
            return StepOutcome(
                False,
                f"a gap in the changes from {record.source} is open ({lag.gap.get('reason')})",
                "replication_gap",
                detail,
            )
        if lag.applied_lsn is None or lag.applied_lsn < fence_lsn:
            return StepOutcome(
                False,
                f"{record.target} has applied {record.source}'s changes up to "
                f"{lag.applied_lsn or 0}, not yet {fence_lsn}",
                "lagging",
                detail,
            )
        return StepOutcome(
            True,
            f"{record.target} applied every change of {record.source} up to its fence",
            # Everything the source wrote before its fence is applied: nothing was lost.
            detail={
                **detail,
                "rpo_from": "positions",
                "rpo_seconds": 0.0,
                "unreplicated_writes": 0,
            },
        )

    def _caught_up(self, record: FailoverRecord) -> StepOutcome:
        gap = self._p.regions.unreplicated(record.source, record.target)
        detail: JsonObject = {"unreplicated_writes": gap.missing, "keys_compared": gap.compared}
        if gap.missing:
            return StepOutcome(
                False,
                f"{gap.missing} writes of {record.source} not yet at {record.target}",
                "lagging",
                detail,
            )
        return StepOutcome(
            True,
            f"{record.target} holds the newest {gap.compared} writes of {record.source}",
            detail={**detail, "rpo_from": "keys", "rpo_seconds": 0.0},
        )

    def _restore_source(self, record: FailoverRecord, token: int) -> StepOutcome:
        """Roll back a switchover whose wait failed: the source is primary again.

        At ``record.rollback_epoch``, never the failover's own epoch (the fence recorded the
        source standby there). The target was never promoted: ``promote_target`` comes after
        ``wait_replication``, which failed. The database first, so the region takes writes
        again, then the control record; both writes are idempotent, so a resumed rollback
        (crash, lost lease, control store blip between them) repeats them safely.
        """
        p = self._p
        epoch = record.rollback_epoch
        p.regions.set_state(record.source, RegionRole.PRIMARY, epoch, token=token)
        p.store.set_region(
            record.source,
            role=RegionRole.PRIMARY,
            epoch=epoch,
            token=token,
            actor=record.actor,
            reason=f"switchover {record.id} rolled back: replication did not catch up",
        )
        return StepOutcome(
            True,
            f"{record.source} is primary again at epoch {epoch}; {record.target} never promoted",
            detail={"role": RegionRole.PRIMARY.value, "epoch": epoch},
        )

    def _promote(self, record: FailoverRecord, token: int) -> StepOutcome:
        p = self._p
        p.regions.set_state(record.target, RegionRole.PRIMARY, record.epoch, token=token)
        p.store.set_region(
            record.target,
            role=RegionRole.PRIMARY,
            epoch=record.epoch,
            token=token,
            actor=record.actor,
            reason=f"promoted by failover {record.id}: {record.reason}",
        )
        return StepOutcome(
            True,
            f"{record.target} is primary at epoch {record.epoch}",
            detail={"promoted_at": p.clock.now().isoformat()},
        )

    def _update_dns(self, record: FailoverRecord) -> StepOutcome:
        g = self._p.gslb
        address = g.addresses[record.target]
        updates = route_to(g.providers, g.name, single(g.name, g.ttl, address))
        detail = {f"{u.provider}_seconds": round(u.seconds, 4) for u in updates} | {
            "address": address,
            "changed": [u.provider for u in updates if u.changed],
        }
        return StepOutcome(
            True,
            f"{g.name} points at {address} on {', '.join(u.provider for u in updates)}",
            detail=detail,
        )

    def _dns_answers(self, record: FailoverRecord) -> StepOutcome:
        g = self._p.gslb
        # The detail records, per provider, which servers were asked and what each answered.
        check = verify_answers(g.providers, g.name, g.addresses[record.target])
        return StepOutcome(check.ok, check.reason, "ok" if check.ok else "dns_stale", check.detail)

    def _first_good_answer(self, record: FailoverRecord) -> StepOutcome:
        g = self._p.gslb
        # Ask through the record, as a client would: whatever the first provider answers.
        answered = next(iter(answers(g.providers[:1], g.name).values()), ())
        if not answered:
            return StepOutcome(False, f"{g.name} has no answer", "dns_empty")
        check = self._p.checks.canary(record.target, answered[0])
        if not check.ok:
            return StepOutcome(False, check.reason, check.code)
        return StepOutcome(
            True,
            check.reason,
            detail={"first_good_answer_at": self._p.clock.now().isoformat(), "via": answered[0]},
        )


def _would(step: Step, record: FailoverRecord, gslb: Gslb) -> str:
    role = "standby" if record.planned else "fenced"
    return {
        Step.FENCE_SOURCE: f"would record {record.source} {role} at epoch {record.epoch}",
        Step.WAIT_REPLICATION: f"would wait until {record.target} holds every write",
        Step.RESTORE_SOURCE: f"would restore {record.source} at epoch {record.rollback_epoch}"
        " if the wait failed",
        Step.PROMOTE_TARGET: f"would promote {record.target} at epoch {record.epoch}",
        Step.UPDATE_DNS: f"would point {gslb.name} at {gslb.addresses.get(record.target)}",
        Step.VERIFY_DNS: "would check the authoritative answers",
        Step.VERIFY_PROBE: f"would ask {record.target} the golden question",
    }.get(step, step.value)
