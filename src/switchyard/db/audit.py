"""Audit repository: append events and read them newest first with keyset pages.

Functions take the session as a keyword and never commit; the caller's unit of work does.
Events are never updated or deleted here.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Row, insert, select
from sqlalchemy.orm import Session

from switchyard.db.tables import audit_events
from switchyard.domain.audit import AuditEvent, AuditPage, JsonObject, thaw_json


def append_audit(
    *,
    session: Session,
    actor: str,
    action: str,
    region: str | None,
    reason: str,
    code: str,
    before: JsonObject | None = None,
    after: JsonObject | None = None,
) -> AuditEvent:
    """Record one event; ``ts`` is the database's transaction time, ``id`` its sequence."""
    statement = (
        insert(audit_events)
        .values(
            actor=actor,
            action=action,
            region=region,
            reason=reason,
            code=code,
            before=None if before is None else thaw_json(before),
            after=None if after is None else thaw_json(after),
        )
        .returning(*audit_events.c)
    )
    return _event(session.execute(statement).one())


def page_audit(
    *, session: Session, limit: int, before_id: int | None = None, region: str | None = None
) -> AuditPage:
    """Up to ``limit`` events with ``id < before_id`` (all when None), newest first.

    With ``region`` only that region's events are returned. ``next_before_id`` is the id of
    the page's oldest event when older matching events exist, else None; ids never repeat
    across pages, so events appended meanwhile cannot shift a page.
    """
    if limit < 1:
        raise ValueError(f"audit page limit must be at least 1, got {limit}")
    query = select(audit_events).order_by(audit_events.c.id.desc()).limit(limit + 1)
    if before_id is not None:
        query = query.where(audit_events.c.id < before_id)
    if region is not None:
        query = query.where(audit_events.c.region == region)
    # One extra row tells whether an older page exists without a COUNT.
    rows = session.execute(query).all()
    items = tuple(_event(row) for row in rows[:limit])
    next_before_id = items[-1].id if len(rows) > limit else None
    return AuditPage(items=items, next_before_id=next_before_id)


def _event(row: Row[Any]) -> AuditEvent:
    return AuditEvent(
        id=int(row.id),
        ts=row.ts,
        actor=str(row.actor),
        action=str(row.action),
        region=row.region,
        reason=str(row.reason),
        code=str(row.code),
        before=row.before,
        after=row.after,
    )
