"""The dialog runtime's HTTP API (``switchyard runtime --region NAME``).

Routes parse, call ``DialogRuntime`` and map its errors; problem details come from the same
handlers as the control-plane API. ``POST /v1/chat`` and ``GET /v1/sessions/{id}`` need no
token: a session id is an unguessable capability held by the end user's client. Adding
documents and restoring a snapshot need an operator token.

Load must not look like death: ``/healthz`` answers on the event loop and never waits for a
thread; ``/readyz`` and the canary run on their own threads; chat beyond its lane's limit is
shed with 503 ``overloaded`` and ``Retry-After`` (see :mod:`switchyard.dialog.admission`).
"""

from __future__ import annotations

import base64
import binascii
import uuid
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import APIRouter, FastAPI, Query, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Receive, Scope, Send

from switchyard import __version__
from switchyard.api import problems
from switchyard.api.auth import TokenTable
from switchyard.api.deps import Operator
from switchyard.api.middleware import install_request_metrics
from switchyard.api.problems import ApiError
from switchyard.dialog.documents import UnsupportedDocumentError
from switchyard.dialog.model import Answer
from switchyard.dialog.runtime import DialogRuntime
from switchyard.dialog.schemas import (
    MAX_DOCUMENT_BYTES,
    CanaryOut,
    ChatRequest,
    ChatResponse,
    CitationOut,
    DocumentIn,
    DocumentOut,
    ReadyOut,
    RestoreIn,
    RestoreOut,
    SessionOut,
    TurnOut,
)
from switchyard.dialog.sessions import citation_json
from switchyard.dialog.store import IndexMismatchError, ManifestError, UnsafePathError
from switchyard.observability.metrics import ApiMetrics
from switchyard.ports.objects import ChecksumMismatch
from switchyard.snapshots.layout import SnapshotError
from switchyard.snapshots.restore import GateFailedError, Restorer

router = APIRouter()


def _runtime(request: Request) -> DialogRuntime:
    runtime: DialogRuntime = request.app.state.runtime
    return runtime


@router.get("/healthz", tags=["health"])
async def healthz() -> dict[str, str]:
    """Alive: the process answers. Says nothing about its dependencies. ``async`` on purpose:
    it runs on the event loop, so no amount of work queued for threads can delay it."""
    return {"status": "ok"}


@router.get("/readyz", tags=["health"], response_model=ReadyOut)
async def readyz(request: Request) -> JSONResponse:
    runtime = _runtime(request)
    r = await runtime.current_readiness()
    body = ReadyOut(
        ready=r.ready,
        region=runtime.region,
        role=r.role,
        epoch=r.epoch,
        index_generation=r.index_generation,
        checks=r.checks,
    )
    return JSONResponse(body.model_dump(), status_code=200 if r.ready else 503)


@router.post("/v1/chat", tags=["dialog"], response_model=ChatResponse)
async def chat(body: ChatRequest, request: Request) -> ChatResponse:
    """One user message → the answer with its citations. 503 ``region_standby`` on a region
    that is not primary (clients retry: GSLB moves them to the primary); 503 ``overloaded``
    with ``Retry-After`` when more chats arrive than the runtime takes on."""
    reply = await _runtime(request).chat(body.session_id, body.message)
    return ChatResponse(
        session_id=reply.session_id,
        answer=reply.answer.text,
        kind=reply.answer.kind.value,
        confidence=reply.answer.confidence,
        citations=_citations(reply.answer),
        intent=reply.intent,
        region=reply.region,
        epoch=reply.epoch,
        turn=reply.turn,
        index_generation=reply.index_generation,
    )


@router.get("/v1/sessions/{session_id}", tags=["dialog"], response_model=SessionOut)
async def get_session(session_id: uuid.UUID, request: Request) -> SessionOut:
    runtime = _runtime(request)
    record, turns = await run_in_threadpool(runtime.session_view, session_id)
    return SessionOut(
        session_id=record.id,
        turns=record.turns,
        region=record.region,
        epoch=record.epoch,
        created_at=record.created_at.isoformat(),
        updated_at=record.updated_at.isoformat(),
        dialog=dict(record.state),
        history=[
            TurnOut(
                seq=t.seq,
                role=t.role,
                text=t.text,
                kind=t.kind,
                intent=t.intent,
                confidence=t.confidence,
                citations=[_stored_citation(c) for c in t.citations],
                region=t.region,
                epoch=t.epoch,
                created_at=t.created_at.isoformat(),
            )
            for t in turns
        ],
    )


@router.post("/v1/documents", tags=["documents"], status_code=201, response_model=DocumentOut)
async def add_document(body: DocumentIn, request: Request, _: Operator) -> JSONResponse:
    """Add or replace a document (operator token). 201 when indexed, 200 when unchanged."""
    content = _decode(body)
    try:
        added = await run_in_threadpool(
            _runtime(request).add_document, body.doc_id, body.media_type, content
        )
    except UnsupportedDocumentError as exc:
        raise ApiError(415, exc.code, str(exc), field="body.content") from None
    out = DocumentOut(
        doc_id=added.doc_id,
        changed=added.changed,
        chunks=added.chunks,
        index_generation=added.index_generation,
        epoch=added.epoch,
    )
    return JSONResponse(out.model_dump(), status_code=201 if added.changed else 200)


@router.get("/v1/canary", tags=["probes"], response_model=CanaryOut)
async def canary(
    request: Request, q: Annotated[str, Query(min_length=1, max_length=500)]
) -> CanaryOut:
    """Answer ``q`` without a session (deep probes); works on a standby too."""
    if not q.strip():
        raise ApiError(422, "validation_failed", "query.q: must not be blank", field="query.q")
    r = await _runtime(request).canary(q.strip())
    return CanaryOut(
        query=r.query,
        answer=r.answer.text,
        kind=r.answer.kind.value,
        confidence=r.answer.confidence,
        cited_documents=list(r.answer.cited_documents),
        retrieved_documents=list(r.retrieved_documents),
        region=r.region,
        role=r.role,
        epoch=r.epoch,
        index_generation=r.index_generation,
        timings_ms={"embed": r.embed_ms, "search": r.search_ms, "total": r.total_ms},
    )


@router.post("/v1/index/restore", tags=["index"], response_model=RestoreOut)
async def restore_index(body: RestoreIn, request: Request, _: Operator) -> RestoreOut:
    """Restore a snapshot generation from the region's bucket: verify every file, run the
    golden questions, then swap the live index. A refusal leaves the live index as it was:
    409 ``snapshot_gate_failed`` (the detail says which scores missed), 422 for a manifest from
    another model or chunker (``index_mismatch``) or damaged files (``checksum_mismatch``), and
    for a malformed or hostile manifest (``manifest_invalid``, or ``index_path_unsafe`` for one
    leading outside the index store) with ``field`` naming it (``manifest.index.segments[0].id``);
    nothing is written then."""
    restorer: Restorer | None = request.app.state.restorer
    if restorer is None:
        raise ApiError(409, "snapshots_not_configured", "this runtime has no snapshot bucket")
    try:
        staged = await run_in_threadpool(restorer, body.generation)
    except GateFailedError as exc:
        raise ApiError(409, exc.code, str(exc)) from None
    except (ManifestError, UnsafePathError) as exc:  # a hostile manifest: its field named
        raise ApiError(422, exc.code, str(exc), field=exc.field) from None
    except (IndexMismatchError, ChecksumMismatch, SnapshotError) as exc:
        raise ApiError(422, exc.code, str(exc)) from None
    _runtime(request).observe_index()
    info = staged.index.info
    return RestoreOut(
        generation=staged.manifest.generation,
        source_region=staged.manifest.source_region,
        index_generation=info.generation,
        documents=info.documents,
        chunks=info.chunks,
        downloaded_files=staged.downloaded_files,
        downloaded_bytes=staged.downloaded_bytes,
        gate=staged.gate.reason,
    )


def _decode(body: DocumentIn) -> bytes:
    if body.encoding == "base64":
        try:
            content = base64.b64decode(body.content, validate=True)
        except (binascii.Error, ValueError):
            raise ApiError(
                422, "validation_failed", "body.content: not valid base64", field="body.content"
            ) from None
    else:
        content = body.content.encode("utf-8")
    if len(content) > MAX_DOCUMENT_BYTES:
        raise ApiError(
            413,
            "document_too_large",
            f"body.content: {len(content)} bytes; the limit is {MAX_DOCUMENT_BYTES}",
            field="body.content",
        )
    return content


def _citations(answer: Answer) -> list[CitationOut]:
    return [_stored_citation(citation_json(c)) for c in answer.citations]


def _stored_citation(c: Mapping[str, Any]) -> CitationOut:
    return CitationOut(
        document=c["doc_id"],
        chunk_id=c["chunk_id"],
        score=c["score"],
        start=c["start"],
        end=c["end"],
        text=c["text"],
    )


def create_runtime_app(
    runtime: DialogRuntime,
    tokens: TokenTable,
    metrics: ApiMetrics,
    restorer: Restorer | None = None,
) -> FastAPI:
    """``restorer``: restores a snapshot generation into the live index (None: this runtime has
    no snapshot bucket configured, and restore requests are refused)."""

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        runtime.close()

    app = FastAPI(
        title=f"Switchyard dialog runtime ({runtime.region})",
        version=__version__,
        description="Chat with cited answers, sessions, documents, and a canary for deep probes.",
        lifespan=lifespan,
    )
    app.state.runtime = runtime
    app.state.tokens = tokens
    app.state.restorer = restorer
    problems.install(app)
    app.include_router(router)

    @app.get("/metrics", include_in_schema=False)
    def metrics_endpoint() -> Response:
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    install_request_metrics(app, metrics)
    app.add_middleware(RefuseChatWhenFull, runtime=runtime)  # outermost: before anything else
    return app


class RefuseChatWhenFull:
    """Refuse ``POST /v1/chat`` while the chat lane and its queue are full, before the body is
    read, validated or timed: under overload most chats are refused, and each refusal must
    cost next to nothing, or refusing alone would starve the probes. The answer is the one
    the route would give (503 ``overloaded`` + ``Retry-After``); it is counted in
    ``switchyard_dialog_requests_shed_total``, not in the request metrics."""

    def __init__(self, app: ASGIApp, runtime: DialogRuntime) -> None:
        self._app = app
        self._runtime = runtime

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST" and scope["path"] == "/v1/chat":
            refusal = self._runtime.chat_lane.refuse_if_full()
            if refusal is not None:
                headers = {"Retry-After": str(refusal.retry_after_seconds)}
                response = problems.problem_response(
                    503, refusal.code, str(refusal), headers=headers
                )
                await response(scope, receive, send)
                return
        await self._app(scope, receive, send)
