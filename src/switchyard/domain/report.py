"""The timeline of a failover and its drill report: RTO parts, RPO, objectives. Pure.

RTO runs from the fault to the first good answer through the GSLB record:

- the fault is the onset of the failure streak that triggered an automatic failover (or that
  an "external" drill was armed for), else the moment the failover started (manual failovers
  and drills that fence the primary themselves inject the fault then);
- the first good answer is when the golden question, asked at the address the authoritative
  server answers, cited the expected document.

RPO is the age, at the fence, of the oldest write the source acknowledged that the target does
not hold (0 when it holds all of them); unknown when the source could not be read. A planned
switchover's comes from its wait (0 once the target applied everything up to the fence); an
unplanned failover's from the fence step: CDC positions (``rpo_from: positions``; an upper
bound unless ``rpo_exact``), else the source's newest turns compared by key (``keys``).

``fence_proof`` says why the source was known to have stopped taking writes before the target
was promoted: ``database`` (its database recorded the fence), ``leases_revoked`` (Vault revoked
its runtime's logins) or ``isolation_timeout`` (nothing of it answered a probe for that long).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from switchyard.domain.audit import JsonObject, JsonValue
from switchyard.domain.failover import Trigger
from switchyard.domain.saga import DrillRecord, FailoverRecord, FailoverState, Step


def fault_search_start(
    record: FailoverRecord, drill: DrillRecord | None, window: timedelta
) -> datetime | None:
    """From when to look for the failure onset that caused ``record``; None when the fault is
    the failover's own start (manual failovers, drills whose loop fences the primary)."""
    if drill is not None:
        return drill.created_at if drill.fault == "external" else None
    if record.trigger is Trigger.AUTOMATIC:
        return record.started_at - window
    return None


def timeline(record: FailoverRecord, fault_at: datetime | None) -> dict[str, JsonValue]:
    """Timestamps and durations of each phase; absent phases are None."""
    start = fault_at or record.started_at

    def finished(step: Step) -> datetime | None:
        s = record.step(step)
        return s.finished_at if s is not None and s.status.value == "succeeded" else None

    def detail(step: Step, key: str) -> JsonValue:
        s = record.step(step)
        return None if s is None or s.detail is None else s.detail.get(key)

    loss_step = Step.WAIT_REPLICATION if finished(Step.WAIT_REPLICATION) else Step.FENCE_SOURCE

    fenced = finished(Step.FENCE_SOURCE)
    dns_updated = finished(Step.UPDATE_DNS)
    dns_verified = finished(Step.VERIFY_DNS)
    good = finished(Step.VERIFY_PROBE)

    def since(t: datetime | None) -> float | None:
        return None if t is None else round((t - start).total_seconds(), 3)

    return {
        "fault_at": start.isoformat(),
        "decided_at": record.started_at.isoformat(),
        "detection_seconds": round((record.started_at - start).total_seconds(), 3),
        "fenced_at": fenced.isoformat() if fenced else None,
        "fence_seconds": since(fenced),
        "dns_updated_at": dns_updated.isoformat() if dns_updated else None,
        "dns_seconds": since(dns_updated),
        "dns_verified_at": dns_verified.isoformat() if dns_verified else None,
        "first_good_answer_at": good.isoformat() if good else None,
        "rto_seconds": since(good) if record.state is FailoverState.SUCCEEDED else None,
        "fence_proof": detail(Step.FENCE_SOURCE, "fence_proof"),
        "rpo_seconds": detail(loss_step, "rpo_seconds"),
        "rpo_from": detail(loss_step, "rpo_from"),
        "unreplicated_writes": detail(loss_step, "unreplicated_writes"),
    }


def drill_report(
    record: FailoverRecord, fault_at: datetime | None, objectives: JsonObject | None
) -> dict[str, JsonValue]:
    """The timeline plus each objective's verdict; ``passed`` only when every one is met."""
    report = timeline(record, fault_at)
    verdicts: dict[str, JsonValue] = {}
    for name in ("rto_seconds", "rpo_seconds"):
        limit = (objectives or {}).get(name)
        if limit is None:
            continue
        value = report.get(name)
        met = isinstance(value, int | float) and isinstance(limit, int | float) and value <= limit
        if name == "rpo_seconds" and limit == 0 and report.get("unreplicated_writes") != 0:
            met = False  # "lose nothing" is about writes, however young the lost ones are
        verdicts[name] = {"objective": limit, "measured": value, "met": met}
    report["objectives"] = verdicts
    report["state"] = record.state.value
    report["passed"] = record.state is FailoverState.SUCCEEDED and all(
        isinstance(v, dict) and v.get("met") for v in verdicts.values()
    )
    return report
