"""Sessions, turns and documents in the region's database, every write fenced by epoch.

Each write function takes the SQLAlchemy session (the caller's unit of work commits) and
first reads this region's ``region_state`` row with a share lock: a region that is not
primary refuses with ``RegionNotWritableError``; a session last written at a newer epoch than this
region holds means this region missed a failover, and it refuses with ``RegionStaleError``. The
control plane's fence is an ``UPDATE`` of that row, which waits for writes in flight.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from switchyard.db.region_state import RegionState, read_region_state
from switchyard.db.region_tables import dialog_sessions, dialog_turns, documents
from switchyard.dialog.model import Citation, Document
from switchyard.errors import ConflictError, NotFoundError, TransientError


class RegionNotWritableError(TransientError):
    """This region is not the primary (or has no recorded role): writes go elsewhere."""

    code = "region_standby"


class RegionStaleError(TransientError):
    """This region's epoch is older than data it holds: it missed a failover."""

    code = "region_stale"


class SessionNotFoundError(NotFoundError):
    code = "session_not_found"


class SessionChangedError(ConflictError):
    """Another turn was recorded in the session while this one was being answered."""

    code = "session_changed"


@dataclass(frozen=True, slots=True)
class SessionRecord:
    id: uuid.UUID
    state: Mapping[str, Any]
    turns: int
    region: str
    epoch: int
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class TurnRecord:
    seq: int
    role: str
    text: str
    kind: str
    intent: str | None
    confidence: float | None
    citations: tuple[Mapping[str, Any], ...]
    region: str
    epoch: int
    created_at: datetime


@dataclass(frozen=True, slots=True)
class NewTurn:
    role: str
    text: str
    kind: str
    intent: str | None = None
    confidence: float | None = None
    citations: Sequence[Citation] = ()


def writable_state(*, session: Session, region: str) -> RegionState:
    """This region's state, share-locked for the rest of the transaction; refuses unless
    primary."""
    state = read_region_state(session=session, region=region, lock=True)
    if state is None:
        raise RegionNotWritableError(
            f"region {region} has no recorded role yet; it takes no writes"
        )
    if not state.writable:
        raise RegionNotWritableError(
            f"region {region} is {state.role.value} (epoch {state.epoch}); "
            "writes go to the primary region"
        )
    return state


def get_session(*, session: Session, session_id: uuid.UUID, lock: bool = False) -> SessionRecord:
    query = select(dialog_sessions).where(dialog_sessions.c.id == session_id)
    if lock:
        query = query.with_for_update()
    row = session.execute(query).one_or_none()
    if row is None:
        raise SessionNotFoundError(f"no session {session_id} in this region")
    return SessionRecord(
        row.id, row.state, row.turns, row.region, row.epoch, row.created_at, row.updated_at
    )


def get_turns(*, session: Session, session_id: uuid.UUID, limit: int = 200) -> list[TurnRecord]:
    """The session's last ``limit`` turns, oldest first."""
    rows = session.execute(
        select(dialog_turns)
        .where(dialog_turns.c.session_id == session_id)
        .order_by(dialog_turns.c.seq.desc())
        .limit(limit)
    ).all()
    return [
        TurnRecord(
            r.seq,
            r.role,
            r.text,
            r.kind,
            r.intent,
            r.confidence,
            tuple(r.citations),
            r.region,
            r.epoch,
            r.created_at,
        )
        for r in reversed(rows)
    ]


def record_exchange(
    *,
    session: Session,
    region: str,
    session_id: uuid.UUID,
    is_new: bool,
    expected_turns: int,
    state: Mapping[str, Any],
    turns: Sequence[NewTurn],
) -> tuple[SessionRecord, RegionState]:
    """Append ``turns`` to the session (creating it when ``is_new``) and store its dialog
    state, all stamped with this region's epoch.

    ``expected_turns`` is the turn count the answer was computed from; if another request
    added turns since, ``SessionChangedError`` is raised and nothing is written.
    """
    fence = writable_state(session=session, region=region)
    if is_new:
        session.execute(
            insert(dialog_sessions).values(
                id=session_id, state=dict(state), turns=0, region=region, epoch=fence.epoch
            )
        )
        current = 0
    else:
        record = get_session(session=session, session_id=session_id, lock=True)
        if record.epoch > fence.epoch:
            raise RegionStaleError(
                f"region {region} holds epoch {fence.epoch} but session {session_id} was "
                f"written at epoch {record.epoch}; this region missed a failover"
            )
        if record.turns != expected_turns:
            raise SessionChangedError(
                f"session {session_id} changed while this message was answered; send it again"
            )
        current = record.turns
    if turns:
        session.execute(
            insert(dialog_turns),
            [
                {
                    "session_id": session_id,
                    "seq": current + i,
                    "role": t.role,
                    "text": t.text,
                    "kind": t.kind,
                    "intent": t.intent,
                    "confidence": t.confidence,
                    "citations": [citation_json(c) for c in t.citations],
                    "region": region,
                    "epoch": fence.epoch,
                }
                for i, t in enumerate(turns, start=1)
            ],
        )
    session.execute(
        update(dialog_sessions)
        .where(dialog_sessions.c.id == session_id)
        .values(
            state=dict(state),
            turns=current + len(turns),
            region=region,
            epoch=fence.epoch,
            updated_at=func.now(),
        )
    )
    return get_session(session=session, session_id=session_id), fence


def citation_json(c: Citation) -> dict[str, Any]:
    return asdict(c)


def store_document(
    *, session: Session, region: str, document: Document, content: bytes
) -> tuple[bool, RegionState]:
    """Insert or replace a document's bytes; returns (changed, fence). Unchanged content
    (same sha256) is not rewritten."""
    fence = writable_state(session=session, region=region)
    existing = session.execute(
        select(documents.c.sha256).where(documents.c.doc_id == document.doc_id)
    ).scalar_one_or_none()
    if existing == document.sha256:
        return False, fence
    values = {
        "title": document.title,
        "media_type": document.media_type,
        "sha256": document.sha256,
        "size_bytes": len(content),
        "content": content,
        "region": region,
        "epoch": fence.epoch,
    }
    session.execute(
        insert(documents)
        .values(doc_id=document.doc_id, **values)
        .on_conflict_do_update(index_elements=["doc_id"], set_={**values, "updated_at": func.now()})
    )
    return True, fence


def stored_documents(*, session: Session) -> list[tuple[str, str, bytes]]:
    """Every added document as (doc_id, media_type, content), by id."""
    rows = session.execute(
        select(documents.c.doc_id, documents.c.media_type, documents.c.content).order_by(
            documents.c.doc_id
        )
    ).all()
    return [(r.doc_id, r.media_type, bytes(r.content)) for r in rows]
