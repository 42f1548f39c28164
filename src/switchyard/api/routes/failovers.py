"""Failovers and drills: the API stores intents (202); only the controller loop acts on them."""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Header, status
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from switchyard.api.deps import ContextDep, Operator, Viewer
from switchyard.api.problems import ApiError
from switchyard.api.schemas import (
    IDEMPOTENCY_KEY,
    Accepted,
    DrillIn,
    DrillOut,
    FailoverIn,
    FailoverOut,
    LoopOut,
    StepOut,
)
from switchyard.domain.audit import JsonObject, thaw_json
from switchyard.domain.failover import DrillKind, IntentRequest
from switchyard.domain.saga import DrillRecord, FailoverRecord
from switchyard.errors import ConflictError, NotFoundError
from switchyard.ports.control import ControlStore

router = APIRouter(tags=["failovers"])

_CONFLICTS = {"target_is_primary", "target_not_standby"}
KeyHeader = Annotated[str | None, Header(alias="Idempotency-Key", pattern=IDEMPOTENCY_KEY)]


def _submit(control: ControlStore, request: IntentRequest) -> JSONResponse:
    try:
        submitted = control.submit_intent(request)
    except NotFoundError:
        raise ApiError(
            422, "unknown_region", f"no region named {request.target!r}", field="body.target"
        ) from None
    except ConflictError as exc:
        field = "body.target" if exc.code in _CONFLICTS else None
        if exc.code == "idempotency_conflict":
            field = "body.idempotency_key"
        raise ApiError(409, exc.code, str(exc), field=field) from None
    body = Accepted(
        id=submitted.failover_id,
        drill_id=submitted.drill_id,
        status="pending",
        href=f"/v1/drills/{submitted.drill_id}"
        if submitted.drill_id
        else f"/v1/failovers/{submitted.failover_id}",
    )
    code = status.HTTP_202_ACCEPTED if submitted.created else status.HTTP_200_OK
    return JSONResponse(body.model_dump(mode="json"), status_code=code)


@router.post(
    "/v1/failovers",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=Accepted,
    responses={409: {"description": "A failover is running, or the target cannot be promoted"}},
)
async def request_failover(
    body: FailoverIn, ctx: ContextDep, who: Operator, key: KeyHeader = None
) -> JSONResponse:
    """Record a manual failover for the loop. 200 (not 202) when the idempotency key was seen."""
    request = IntentRequest(
        kind="failover",
        target=body.target,
        reason=body.reason,
        actor=who.name,
        dry_run=body.dry_run,
        idempotency_key=body.idempotency_key or key,
    )
    return await run_in_threadpool(_submit, ctx.control, request)


@router.get("/v1/failovers/{failover_id}", response_model=FailoverOut)
async def failover(failover_id: UUID, ctx: ContextDep, _: Viewer) -> FailoverOut:
    """The failover with its step-by-step timeline (or its intent, if the loop has not taken it)."""
    return await run_in_threadpool(_failover_out, ctx.control, failover_id)


def _failover_out(control: ControlStore, failover_id: UUID) -> FailoverOut:
    try:
        return _record_out(control.failover(failover_id))
    except NotFoundError:
        pass
    try:
        state, reason = control.intent_status(failover_id)
    except NotFoundError:
        raise ApiError(
            404, "failover_not_found", f"no failover {failover_id}", field="path.failover_id"
        ) from None
    return FailoverOut(id=failover_id, status=state, reason=reason)


def _record_out(r: FailoverRecord) -> FailoverOut:
    return FailoverOut(
        id=r.id,
        status=r.state.value,
        reason=r.reason,
        source=r.source,
        target=r.target,
        trigger=r.trigger.value,
        epoch=r.epoch,
        dry_run=r.dry_run,
        actor=r.actor,
        started_at=r.started_at,
        finished_at=r.finished_at,
        drill_id=r.drill_id,
        steps=[
            StepOut(
                seq=s.seq,
                name=s.name.value,
                status=s.status.value,
                reason=s.reason,
                attempts=s.attempts,
                started_at=s.started_at,
                finished_at=s.finished_at,
                detail=_plain(s.detail),
            )
            for s in r.steps
        ],
    )


@router.post("/v1/drills", status_code=status.HTTP_202_ACCEPTED, response_model=Accepted)
async def request_drill(
    body: DrillIn, ctx: ContextDep, who: Operator, key: KeyHeader = None
) -> JSONResponse:
    """Record a drill for the loop; its report (RTO, RPO, verdicts) appears when it ends."""
    request = IntentRequest(
        kind="drill",
        target=body.target,
        reason=body.reason,
        actor=who.name,
        idempotency_key=body.idempotency_key or key,
        drill_kind=DrillKind(body.kind),
        fault=body.fault,
        objectives=body.objectives.model_dump(exclude_none=True),
    )
    return await run_in_threadpool(_submit, ctx.control, request)


@router.get("/v1/drills/{drill_id}", response_model=DrillOut)
async def drill(drill_id: UUID, ctx: ContextDep, _: Viewer) -> DrillOut:
    try:
        d: DrillRecord = await run_in_threadpool(ctx.control.drill, drill_id)
    except NotFoundError:
        raise ApiError(
            404, "drill_not_found", f"no drill {drill_id}", field="path.drill_id"
        ) from None
    return DrillOut(
        id=d.id,
        kind=d.kind.value,
        fault=d.fault,
        target=d.target,
        status=d.status,
        failover_id=d.failover_id,
        objectives=_plain(d.objectives),
        created_at=d.created_at,
        finished_at=d.finished_at,
        report=_plain(d.report),
    )


@router.get("/v1/controller", response_model=LoopOut, tags=["controller"])
async def controller(ctx: ContextDep, _: Viewer) -> LoopOut:
    """What the loop decided last, why, and which vantage point leads."""
    s = await run_in_threadpool(ctx.control.loop_status)
    return LoopOut(
        state=s.state.value, code=s.code, reason=s.reason, decided_at=s.decided_at, leader=s.holder
    )


def _plain(value: JsonObject | None) -> dict[str, Any] | None:
    return None if value is None else dict(thaw_json(value))  # type: ignore[arg-type]
