"""Replication lag between regions (read-only), for dashboards and runbooks."""

from __future__ import annotations

import math

from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool

from switchyard.api.deps import ContextDep, Viewer
from switchyard.api.problems import ApiError
from switchyard.api.schemas import ReplicationOut, ReplicationPairOut
from switchyard.domain.region import RegionRole
from switchyard.domain.replication import ReplicationLag

router = APIRouter(prefix="/v1/replication", tags=["replication"])

# JSON has no infinity: a gap or a re-sync reports this many seconds to the gate.
_GAP_SECONDS = 1e9


@router.get("", response_model=ReplicationOut)
async def replication(context: ContextDep, _: Viewer) -> ReplicationOut:
    monitor = context.replication
    if monitor is None:
        raise ApiError(503, "replication_unavailable", "no replication monitor is configured")
    regions = await run_in_threadpool(context.control.regions)
    primaries = {r.name for r in regions if r.role is RegionRole.PRIMARY}
    pairs = [(s.name, t.name) for s in regions for t in regions if s.name != t.name]
    lags = [await run_in_threadpool(monitor.lag, source, target) for source, target in pairs]
    items = []
    for lag in lags:
        if context.replication_gauges is not None:
            context.replication_gauges.observe(lag)
        items.append(_out(lag, active=lag.source in primaries))
    return ReplicationOut(items=items)


def _out(lag: ReplicationLag, *, active: bool) -> ReplicationPairOut:
    gate = lag.gate_seconds()
    return ReplicationPairOut(
        source=lag.source,
        target=lag.target,
        active=active,
        lag_bytes=lag.lag_bytes,
        lag_seconds=lag.lag_seconds,
        consumer_lag_messages=lag.consumer_lag_messages,
        heartbeat_age_seconds=lag.heartbeat_age_seconds,
        gate_lag_seconds=_GAP_SECONDS if gate is not None and math.isinf(gate) else gate,
        slot_exists=lag.slot_exists,
        slot_active=lag.slot_active,
        applied_lsn=lag.applied_lsn,
        applied_tx_seq=lag.applied_tx_seq,
        source_epoch=lag.source_epoch,
        sink_status_age_seconds=lag.status_age_seconds,
        gap=lag.gap,
        resyncing=lag.resyncing,
        dead_letters=lag.dead_letters,
        stale_epoch_refused=lag.stale_refused,
    )
