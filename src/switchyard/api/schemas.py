"""Request and response bodies of the REST API (kept apart from the tables)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

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
