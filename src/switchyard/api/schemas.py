"""Request and response bodies of the REST API (kept apart from the tables)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from switchyard.domain.audit import AuditEvent, thaw_json
from switchyard.domain.region import Region, RegionRole

REGION_NAME = r"^[a-z][a-z0-9-]{0,62}$"


class RegionOut(BaseModel):
    name: str
    role: RegionRole
    epoch: int
    updated_at: datetime

    @classmethod
    def of(cls, region: Region) -> RegionOut:
        return cls(
            name=region.name, role=region.role, epoch=region.epoch, updated_at=region.updated_at
        )


class RegionList(BaseModel):
    items: list[RegionOut]


class EventOut(BaseModel):
    id: int
    ts: datetime
    actor: str
    action: str
    region: str | None
    reason: str
    code: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None

    @classmethod
    def of(cls, e: AuditEvent) -> EventOut:
        def plain(value: Any) -> dict[str, Any] | None:
            return None if value is None else dict(thaw_json(value))  # type: ignore[arg-type]

        return cls(
            id=e.id,
            ts=e.ts,
            actor=e.actor,
            action=e.action,
            region=e.region,
            reason=e.reason,
            code=e.code,
            before=plain(e.before),
            after=plain(e.after),
        )


class EventPage(BaseModel):
    items: list[EventOut]
    next_before_id: Annotated[
        int | None, Field(description="Pass as before_id to get the next, older page")
    ]


class NoteIn(BaseModel):
    """An operator's note on the timeline (maintenance window, incident link...)."""

    model_config = ConfigDict(extra="forbid")

    message: Annotated[str, Field(min_length=1, max_length=2000)]
    region: Annotated[str | None, Field(pattern=REGION_NAME)] = None


class Health(BaseModel):
    status: str
    checks: dict[str, str] = {}


# -- failovers and drills ----------------------------------------------------------------

IDEMPOTENCY_KEY = r"^[A-Za-z0-9._:-]{8,128}$"


class FailoverIn(BaseModel):
    """Ask the loop to fail over to ``target``; it answers 202 and acts on its next cycle."""

    model_config = ConfigDict(extra="forbid")

    target: Annotated[str, Field(pattern=REGION_NAME)]
    reason: Annotated[str, Field(min_length=3, max_length=2000)]
    dry_run: bool = False
    idempotency_key: Annotated[str | None, Field(pattern=IDEMPOTENCY_KEY)] = None


class Objectives(BaseModel):
    model_config = ConfigDict(extra="forbid")

    rto_seconds: Annotated[float | None, Field(gt=0, le=86400)] = None
    rpo_seconds: Annotated[float | None, Field(ge=0, le=86400)] = None


class DrillIn(BaseModel):
    """A drill: ``planned`` switches over losing nothing; ``unplanned`` fails over as if the
    primary were lost (``fault: fence``: the loop fences it; ``external``: the drill measures
    the next automatic failover while the runbook breaks the primary itself)."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["planned", "unplanned"]
    target: Annotated[str, Field(pattern=REGION_NAME)]
    reason: Annotated[str, Field(min_length=3, max_length=2000)] = "drill"
    fault: Literal["fence", "external"] = "fence"
    objectives: Objectives = Objectives()
    idempotency_key: Annotated[str | None, Field(pattern=IDEMPOTENCY_KEY)] = None


class Accepted(BaseModel):
    id: UUID
    drill_id: UUID | None = None
    status: str
    href: str


class StepOut(BaseModel):
    seq: int
    name: str
    status: str
    reason: str
    attempts: int
    started_at: datetime | None
    finished_at: datetime | None
    detail: dict[str, Any] | None


class FailoverOut(BaseModel):
    id: UUID
    status: str  # pending | rejected | running | succeeded | failed | aborted
    reason: str
    source: str | None = None
    target: str | None = None
    trigger: str | None = None
    epoch: int | None = None
    dry_run: bool = False
    actor: str | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    steps: list[StepOut] = []
    drill_id: UUID | None = None


class DrillOut(BaseModel):
    id: UUID
    kind: str
    fault: str
    target: str
    status: str
    failover_id: UUID | None
    objectives: dict[str, Any] | None
    created_at: datetime
    finished_at: datetime | None
    report: dict[str, Any] | None


class LoopOut(BaseModel):
    state: str
    code: str
    reason: str
    decided_at: datetime | None
    leader: str | None


class ReplicationPairOut(BaseModel):
    """CDC from ``source`` to ``target``. ``active``: the direction data flows now (from the
    primary to a standby). Every figure is null while it cannot be read."""

    source: str
    target: str
    active: bool
    lag_bytes: int | None
    lag_seconds: float | None
    consumer_lag_messages: int | None
    heartbeat_age_seconds: float | None
    gate_lag_seconds: float | None = Field(
        description="What the failover gate compares with max_lag_seconds "
        "(null: unknown; a gap or re-sync reads as a very large number)"
    )
    slot_exists: bool | None
    slot_active: bool | None
    applied_lsn: int | None
    applied_tx_seq: int | None
    source_epoch: int | None
    sink_status_age_seconds: float | None
    gap: dict[str, Any] | None
    resyncing: bool
    dead_letters: int
    stale_epoch_refused: int


class SnapshotRegionOut(BaseModel):
    """A region's index snapshots. Generations are null while unknown (nothing published or
    restored yet, or the bucket unreadable: ``error`` says why)."""

    region: str
    primary: bool
    latest_generation: int | None = Field(description="newest generation in its bucket")
    active_generation: int | None = Field(description="generation its runtime serves")
    age_seconds: float | None = Field(
        description="time since the generation it serves was published"
    )
    activated_at: datetime | None
    generations_behind: int | None = Field(
        description="what the failover gate compares with max_generations_behind"
    )
    error: str | None


class ReplicationOut(BaseModel):
    items: list[ReplicationPairOut]
    snapshots: list[SnapshotRegionOut] = Field(
        default_factory=list, description="empty when no snapshot buckets are configured"
    )
