"""Liveness, readiness and metrics (no token: probes and Prometheus scrape them)."""

from __future__ import annotations

import logging

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from switchyard.api.deps import ContextDep
from switchyard.api.schemas import Health
from switchyard.db.health import store_revision
from switchyard.errors import TransientError

log = logging.getLogger(__name__)
router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=Health)
def healthz() -> Health:
    """The process is alive (says nothing about its dependencies)."""
    return Health(status="ok")


@router.get("/readyz", response_model=Health, responses={503: {"model": Health}})
def readyz(ctx: ContextDep) -> Response:
    """Ready when the control-plane store answers and is migrated to this build's revision."""
    checks: dict[str, str] = {}
    try:
        revision = store_revision(ctx.engine)
        checks["store"] = "ok"
        checks["migrations"] = (
            "ok"
            if revision == ctx.expected_revision
            else f"at {revision or 'none'}, expected {ctx.expected_revision}"
        )
    except TransientError as exc:
        # Anonymous callers learn only that it is down; the driver's detail goes to the log.
        log.warning("readyz.store_unreachable", extra={"fields": {"detail": str(exc)}})
        checks["store"] = "unreachable"
        checks["migrations"] = "unknown"
    ok = all(v == "ok" for v in checks.values())
    body = Health(status="ready" if ok else "not ready", checks=checks)
    return JSONResponse(body.model_dump(), status_code=200 if ok else 503)


@router.get("/metrics", include_in_schema=False)
def metrics(ctx: ContextDep) -> Response:
    return Response(generate_latest(ctx.metrics.registry), media_type=CONTENT_TYPE_LATEST)
