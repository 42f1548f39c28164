"""Replication between regions (read-only), for dashboards and runbooks: CDC lag per region
pair, and per region the index snapshot generations and their age."""

from __future__ import annotations

import math
from datetime import UTC, datetime

from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool

from switchyard.api.context import ApiContext
from switchyard.api.deps import ContextDep, Viewer
from switchyard.api.problems import ApiError
from switchyard.api.schemas import ReplicationOut, ReplicationPairOut, SnapshotRegionOut
from switchyard.domain.region import Region, RegionRole
from switchyard.domain.replication import ReplicationLag
from switchyard.snapshots.status import read_status, snapshot_figures

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
    snapshots = await run_in_threadpool(_snapshots, context, regions)
    return ReplicationOut(items=items, snapshots=snapshots)


def _snapshots(context: ApiContext, regions: list[Region]) -> list[SnapshotRegionOut]:
    if not context.snapshot_stores:
        return []
    primary = next((r.name for r in regions if r.role is RegionRole.PRIMARY), None)
    figures = snapshot_figures(read_status(context.snapshot_stores), primary, datetime.now(UTC))
    out = []
    for region, f in figures.items():
        if context.replication_gauges is not None:
            context.replication_gauges.observe_snapshot(region, f)
        out.append(
            SnapshotRegionOut(
                region=region,
                primary=f.primary,
                latest_generation=f.status.latest_generation,
                active_generation=f.status.active_generation,
                age_seconds=None if f.age_seconds is None else round(f.age_seconds, 3),
                activated_at=f.status.activated_at,
                generations_behind=f.generations_behind,
                error=f.status.error,
            )
        )
    return out


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
