"""The dialog runtime service: one chat turn, the canary, adding documents, readiness.

It wires the pure parts (intent classification, the dialog manager, retrieval, extractive
answering) to the I/O (the region's database, the index on disk, the LLM gateway, tools).
CPU work and blocking database calls run on threads so the event loop stays free for other
requests and the LLM and tool calls, which are async. Each kind of request has its own lane
(:mod:`switchyard.dialog.admission`): chat is admitted up to a limit and shed beyond it, the
canary has its own small lane, and readiness its own thread, so chat load never queues a probe.

A chat turn is three phases, so no database transaction is held open while answering:
(1) read the region's role and the session (refuse early on a standby), (2) answer,
(3) in one transaction, re-check the role under a share lock, check that nobody else added a
turn meanwhile, and append both turns stamped with the epoch.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from switchyard.db import migrate
from switchyard.db.engine import unit_of_work
from switchyard.db.region_state import RegionState, read_region_state
from switchyard.dialog import sessions
from switchyard.dialog.admission import CpuGate, Lane, LaneLimits, ServingLimits, ShedReason
from switchyard.dialog.answering import extractive_answer
from switchyard.dialog.documents import load_document
from switchyard.dialog.embedding import Embedder
from switchyard.dialog.index import with_documents
from switchyard.dialog.intents import IntentClassifier, IntentMatch
from switchyard.dialog.live_index import LiveIndex
from switchyard.dialog.llm import LlmGateway, LlmUnavailable
from switchyard.dialog.manager import (
    CallTool,
    DialogManager,
    DialogState,
    Reply,
    Step,
    tool_reply,
)
from switchyard.dialog.model import Answer, AnswerKind, Retrieval
from switchyard.dialog.prompt import build_messages, generated_answer
from switchyard.dialog.retrieval import Retriever
from switchyard.dialog.tools import ToolRegistry
from switchyard.domain.region import RegionRole
from switchyard.observability.logging import log_event
from switchyard.observability.metrics import DialogMetrics

_log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class ChatReply:
    session_id: uuid.UUID
    answer: Answer
    intent: str
    region: str
    epoch: int
    turn: int
    index_generation: int


@dataclass(frozen=True, slots=True)
class CanaryReply:
    query: str
    answer: Answer
    retrieved_documents: tuple[str, ...]
    region: str
    role: str
    epoch: int
    index_generation: int
    embed_ms: float
    search_ms: float
    total_ms: float


@dataclass(frozen=True, slots=True)
class DocumentAdded:
    doc_id: str
    changed: bool
    chunks: int
    index_generation: int
    epoch: int


@dataclass(frozen=True, slots=True)
class Readiness:
    ready: bool
    checks: dict[str, str]  # check name -> "ok" or the reason it failed
    role: str | None
    epoch: int | None
    index_generation: int | None


class DialogRuntime:
    def __init__(
        self,
        *,
        region: str,
        engine: Engine,
        embedder: Embedder,
        index: LiveIndex,
        retriever: Retriever,
        classifier: IntentClassifier,
        manager: DialogManager,
        tools: ToolRegistry,
        metrics: DialogMetrics,
        llm: LlmGateway | None = None,
        limits: ServingLimits | None = None,
    ) -> None:
        self.region = region
        self.engine = engine
        self.embedder = embedder
        self.index = index
        self.retriever = retriever
        self.classifier = classifier
        self.manager = manager
        self.tools = tools
        self.metrics = metrics
        self.llm = llm
        self.expected_revision = migrate.head_revision(schema=migrate.REGION)
        limits = limits or ServingLimits()
        self.chat_lane = self._lane("chat", limits.chat)
        self.canary_lane = self._lane("canary", limits.canary)
        # One thread; concurrent probes share the read in flight (``current_readiness``).
        self._readiness_lane = Lane("readiness", LaneLimits(1, 0, 1.0))
        self._readiness: asyncio.Future[Readiness] | None = None
        self._cpu = CpuGate()
        self.observe_index()

    def _lane(self, name: str, limits: LaneLimits) -> Lane:
        lane = Lane(name, limits, on_change=self._observe_lane, on_shed=self._observe_shed)
        self._observe_lane(lane)
        for reason in ShedReason:
            self.metrics.shed.labels(name, reason.value)  # every series from the start
        return lane

    def close(self) -> None:
        """Let the lanes' threads end (the server is stopping)."""
        for lane in (self.chat_lane, self.canary_lane, self._readiness_lane):
            lane.close()

    # -- chat ---------------------------------------------------------------------------------

    async def chat(self, session_id: uuid.UUID | None, message: str) -> ChatReply:
        """One turn, admitted by the chat lane: ``Overloaded`` (503) when it is full."""
        async with self.chat_lane.admit():
            return await self._chat(session_id, message)

    async def _chat(self, session_id: uuid.UUID | None, message: str) -> ChatReply:
        started = time.perf_counter()
        timings: dict[str, float] = {}
        is_new = session_id is None
        sid = session_id or uuid.uuid4()
        state, turns = await self._timed(timings, "load", lambda: self._load(sid, is_new))

        index = self.index.current
        vector = await self._timed(
            timings, "embed", lambda: self._cpu_stage(lambda: self.retriever.embed(message))
        )
        intent = self.classifier.classify_with_vector(message, vector)
        step = self.manager.step(state, message, intent)
        retrieval: Retrieval | None = None
        if isinstance(step.action, Reply):
            answer = Answer(step.action.text, AnswerKind.DIALOG, intent.confidence)
        elif isinstance(step.action, CallTool):
            answer = await self._call_tool(step.action)
        else:
            retrieval = await self._timed(
                timings,
                "search",
                lambda: self._cpu_stage(
                    lambda: self.retriever.retrieve(index, message, vector=vector)
                ),
            )
            answer = await self._answer(message, retrieval, timings)

        user = sessions.NewTurn("user", message, "message", intent=intent.name)
        reply = sessions.NewTurn(
            "assistant",
            answer.text,
            answer.kind.value,
            intent=intent.name,
            confidence=answer.confidence,
            citations=answer.citations,
        )
        record, fence = await self._timed(
            timings, "store", lambda: self._store_turns(sid, is_new, turns, step, (user, reply))
        )
        self._observe_answer(answer)
        self._log_chat(sid, message, intent, step, retrieval, answer, fence, timings, started)
        return ChatReply(
            sid, answer, intent.name, self.region, fence.epoch, record.turns, index.info.generation
        )

    def _load(self, sid: uuid.UUID, is_new: bool) -> tuple[DialogState, int]:
        with unit_of_work(self.engine) as s:
            fence = sessions.writable_state(session=s, region=self.region)
            self._observe_state(fence)
            if is_new:
                return DialogState(), 0
            record = sessions.get_session(session=s, session_id=sid)
            return _dialog_state(record.state), record.turns

    def _store_turns(
        self,
        sid: uuid.UUID,
        is_new: bool,
        expected_turns: int,
        step: Step,
        turns: Sequence[sessions.NewTurn],
    ) -> tuple[sessions.SessionRecord, RegionState]:
        state = step.action.then_state if isinstance(step.action, CallTool) else step.state
        with unit_of_work(self.engine) as s:
            return sessions.record_exchange(
                session=s,
                region=self.region,
                session_id=sid,
                is_new=is_new,
                expected_turns=expected_turns,
                state=state.to_json(),
                turns=turns,
            )

    async def _answer(
        self, message: str, retrieval: Retrieval, timings: dict[str, float]
    ) -> Answer:
        if self.llm is None or not retrieval.relevant:
            return extractive_answer(message, retrieval)
        try:
            completion = await self.llm.complete(build_messages(message, retrieval.hits))
        except LlmUnavailable as exc:
            # The endpoint failed (not busy): the extractive answer is still a sourced answer.
            log_event(_log, "llm.fallback", level=logging.WARNING, reason=exc.reason.value)
            return extractive_answer(message, retrieval)
        finally:
            self.metrics.llm_in_flight.set(self.llm.in_flight)
            self.metrics.llm_waiting.set(self.llm.waiting)
        timings["llm"] = completion.llm_ms
        timings["llm_queue"] = completion.queue_ms
        answer = generated_answer(completion, retrieval.hits, retrieval.confidence)
        return answer if answer.citations else extractive_answer(message, retrieval)

    async def _call_tool(self, action: CallTool) -> Answer:
        outcome = await self.tools.call(action.tool, action.arguments)
        self.metrics.tool_calls.labels(action.tool, outcome.error_code or "ok").inc()
        return Answer(
            tool_reply(outcome, action.tool), AnswerKind.DIALOG, 1.0 if outcome.ok else 0.0
        )

    # -- sessions -----------------------------------------------------------------------------

    def session_view(
        self, sid: uuid.UUID
    ) -> tuple[sessions.SessionRecord, list[sessions.TurnRecord]]:
        with unit_of_work(self.engine) as s:
            record = sessions.get_session(session=s, session_id=sid)
            return record, sessions.get_turns(session=s, session_id=sid)

    # -- canary -------------------------------------------------------------------------------

    async def canary(self, query: str) -> CanaryReply:
        """Answer ``query`` without touching any session: what a deep probe asks, on a
        standby too. The role is read from the database, so a probe also checks it.
        Runs in the canary's own lane: chat load never queues it, a probe flood is shed."""
        async with self.canary_lane.admit():
            return await self.canary_lane.run(lambda: self._canary(query))

    def _canary(self, query: str) -> CanaryReply:
        started = time.perf_counter()
        index = self.index.current
        with self._cpu.hold(urgent=True):  # before any waiting chat stage
            retrieval = self.retriever.retrieve(index, query)
            answer = extractive_answer(query, retrieval)
        with unit_of_work(self.engine) as s:
            state = read_region_state(session=s, region=self.region)
        if state is not None:
            self._observe_state(state)
        total_ms = round((time.perf_counter() - started) * 1000, 3)
        log_event(
            _log,
            "dialog.canary",
            query=query,
            region=self.region,
            epoch=state.epoch if state else None,
            kind=answer.kind.value,
            confidence=answer.confidence,
            retrieved=_hit_fields(retrieval),
            cited=[c.chunk_id for c in answer.citations],
            timings_ms={
                "embed": retrieval.embed_ms,
                "search": retrieval.search_ms,
                "total": total_ms,
            },
        )
        return CanaryReply(
            query=query,
            answer=answer,
            retrieved_documents=retrieval.documents,
            region=self.region,
            role=state.role.value if state else "unknown",
            epoch=state.epoch if state else 0,
            index_generation=index.info.generation,
            embed_ms=retrieval.embed_ms,
            search_ms=retrieval.search_ms,
            total_ms=total_ms,
        )

    # -- documents ----------------------------------------------------------------------------

    def add_document(self, doc_id: str, media_type: str, content: bytes) -> DocumentAdded:
        """Add or replace a document: index the next generation, record the document (fenced
        by epoch), then make the new generation live.

        If recording fails (a standby, a database outage) the new generation is dropped; if the
        process dies after recording, start-up reconciles the index with the recorded documents.
        """
        document = load_document(doc_id, content, media_type)
        with self.index.write_lock:
            current = self.index.current
            known = current.documents.get(doc_id)
            if known is not None and known.sha256 == document.sha256:
                with unit_of_work(self.engine) as s:
                    _, fence = sessions.store_document(
                        session=s, region=self.region, document=document, content=content
                    )
                return DocumentAdded(
                    doc_id, False, known.chunks, current.info.generation, fence.epoch
                )
            with unit_of_work(self.engine) as s:  # refuse early on a standby
                sessions.writable_state(session=s, region=self.region)
            nxt = with_documents(current, [document], self.embedder)
            with unit_of_work(self.engine) as s:
                _, fence = sessions.store_document(
                    session=s, region=self.region, document=document, content=content
                )
            self.index.activate(nxt)
            self.observe_index()
            log_event(
                _log,
                "index.document_added",
                doc_id=doc_id,
                generation=nxt.info.generation,
                chunks=nxt.documents[doc_id].chunks,
                epoch=fence.epoch,
            )
            return DocumentAdded(
                doc_id, True, nxt.documents[doc_id].chunks, nxt.info.generation, fence.epoch
            )

    # -- readiness ----------------------------------------------------------------------------

    async def current_readiness(self) -> Readiness:
        """``readiness()`` on its own thread; probes arriving while one read is in flight share
        its result, so a burst of probes costs one database round trip."""
        pending, loop = self._readiness, asyncio.get_running_loop()
        if pending is None or pending.done() or pending.get_loop() is not loop:
            pending = asyncio.ensure_future(self._readiness_lane.run(self.readiness))
            self._readiness = pending
        return await asyncio.shield(pending)

    def readiness(self) -> Readiness:
        """Read what readiness depends on (one connection), then judge it: ``assess_readiness``."""
        index = self.index.current
        revision: str | None = None
        state: RegionState | None = None
        db_error: str | None = None
        try:
            with Session(self.engine) as s:
                revision = migrate.connection_revision(s.connection(), schema=migrate.REGION)
                if revision == self.expected_revision:
                    state = read_region_state(session=s, region=self.region)
        except Exception as exc:  # any failure means not ready; say which kind
            db_error = type(exc).__name__
        if state is not None:
            self._observe_state(state)
        return assess_readiness(
            index.info.chunks,
            index.info.generation,
            db_error=db_error,
            revision=revision,
            expected_revision=self.expected_revision,
            state=state,
        )

    # -- observation --------------------------------------------------------------------------

    async def _timed(self, timings: dict[str, float], stage: str, fn: Callable[[], T]) -> T:
        start = time.perf_counter()
        try:
            return await self.chat_lane.run(fn)
        finally:
            elapsed = time.perf_counter() - start
            timings[stage] = round(elapsed * 1000, 3)
            self.metrics.stage_seconds.labels(stage).observe(elapsed)

    def _cpu_stage(self, fn: Callable[[], T]) -> T:
        with self._cpu.hold():
            return fn()

    def observe_index(self) -> None:
        """Publish the live index's generation and size as metrics (after any swap)."""
        info = self.index.current.info
        self.metrics.index_generation.set(info.generation)
        self.metrics.index_chunks.set(info.chunks)

    def _observe_lane(self, lane: Lane) -> None:
        self.metrics.in_flight.labels(lane.name).set(lane.in_flight)
        self.metrics.queued.labels(lane.name).set(lane.waiting)

    def _observe_shed(self, lane: Lane, reason: ShedReason) -> None:
        # Counted, not logged: under overload a line per refusal would add to the load.
        self.metrics.shed.labels(lane.name, reason.value).inc()

    def _observe_state(self, state: RegionState) -> None:
        self.metrics.epoch.set(state.epoch)
        for role in RegionRole:
            self.metrics.role.labels(role.value).set(1 if state.role is role else 0)

    def _observe_answer(self, answer: Answer) -> None:
        self.metrics.answers.labels(answer.kind.value).inc()
        self.metrics.confidence.observe(answer.confidence)

    def _log_chat(
        self,
        sid: uuid.UUID,
        message: str,
        intent: IntentMatch,
        step: Step,
        retrieval: Retrieval | None,
        answer: Answer,
        fence: RegionState,
        timings: dict[str, float],
        started: float,
    ) -> None:
        log_event(
            _log,
            "dialog.chat",
            query=message,
            session=str(sid),
            region=self.region,
            epoch=fence.epoch,
            intent=intent.name,
            step=step.code.value,
            kind=answer.kind.value,
            confidence=answer.confidence,
            retrieved=_hit_fields(retrieval),
            cited=[c.chunk_id for c in answer.citations],
            timings_ms={**timings, "total": round((time.perf_counter() - started) * 1000, 3)},
        )


def assess_readiness(
    chunks: int,
    generation: int,
    *,
    db_error: str | None,
    revision: str | None,
    expected_revision: str,
    state: RegionState | None,
) -> Readiness:
    """Ready when the index holds chunks, the database answers at the expected schema
    revision, and the region's role is recorded. A standby is ready: it serves reads."""
    checks = {"index": "ok" if chunks > 0 else "index is empty"}
    if db_error is not None:
        checks["database"] = f"unreachable ({db_error})"
    else:
        checks["database"] = "ok"
        checks["schema"] = (
            "ok"
            if revision == expected_revision
            else f"schema at {revision or 'base'}, this build needs {expected_revision}"
        )
        checks["role"] = "ok" if state is not None else "no role recorded for this region"
    return Readiness(
        ready=all(v == "ok" for v in checks.values()),
        checks=checks,
        role=state.role.value if state else None,
        epoch=state.epoch if state else None,
        index_generation=generation,
    )


def _hit_fields(retrieval: Retrieval | None) -> list[dict[str, Any]]:
    """Retrieved chunks as log fields: ids and scores, never the text."""
    if retrieval is None:
        return []
    return [
        {
            "chunk_id": h.chunk.chunk_id,
            "doc_id": h.chunk.doc_id,
            "score": h.score,
            "similarity": None if h.similarity is None else round(h.similarity, 4),
            "bm25": None if h.bm25 is None else round(h.bm25, 4),
        }
        for h in retrieval.hits
    ]


def _dialog_state(raw: Any) -> DialogState:
    """The stored dialog state; an unreadable one restarts the dialog rather than fail."""
    try:
        return DialogState.from_json(raw)
    except ValueError:
        log_event(_log, "dialog.state_reset", level=logging.WARNING)
        return DialogState()
