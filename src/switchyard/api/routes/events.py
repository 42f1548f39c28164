"""The audit log: every action with actor, reason and before/after; newest first."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, status

from switchyard.api.deps import Operator, SessionDep, Viewer
from switchyard.api.problems import ApiError
from switchyard.api.schemas import REGION_NAME, EventOut, EventPage, NoteIn
from switchyard.db.audit import append_audit, page_audit
from switchyard.db.regions import get_region
from switchyard.errors import NotFoundError

router = APIRouter(prefix="/v1/events", tags=["events"])

MAX_PAGE = 500


@router.get("", response_model=EventPage)
def events(
    session: SessionDep,
    _: Viewer,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
    before_id: Annotated[
        int | None, Query(ge=1, description="From EventPage.next_before_id")
    ] = None,
    region: Annotated[str | None, Query(pattern=REGION_NAME)] = None,
) -> EventPage:
    page = page_audit(session=session, limit=limit, before_id=before_id, region=region)
    return EventPage(items=[EventOut.of(e) for e in page.items], next_before_id=page.next_before_id)


@router.post("", response_model=EventOut, status_code=status.HTTP_201_CREATED)
def add_note(note: NoteIn, session: SessionDep, who: Operator) -> EventOut:
    """Record an operator's note on the timeline. It changes nothing else."""
    if note.region is not None:
        try:
            get_region(session=session, name=note.region)
        except NotFoundError:
            raise ApiError(
                404, "region_not_found", f"no region named {note.region!r}", field="body.region"
            ) from None
    event = append_audit(
        session=session,
        actor=who.name,
        action="note",
        region=note.region,
        reason=note.message,
        code="operator_note",
    )
    return EventOut.of(event)
