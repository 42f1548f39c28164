"""The FastAPI application factory. Routes parse and call services; they never act."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from fastapi import FastAPI, Request, Response

from switchyard import __version__
from switchyard.api import problems
from switchyard.api.context import ApiContext
from switchyard.api.routes import events, health, regions


def create_app(ctx: ApiContext) -> FastAPI:
    app = FastAPI(
        title="Switchyard control plane",
        version=__version__,
        description="Regions, failovers, drills and the audit log of a multi-region RAG service.",
    )
    app.state.ctx = ctx
    problems.install(app)
    for router in (health.router, regions.router, events.router):
        app.include_router(router)

    @app.middleware("http")
    async def measure(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        start = time.perf_counter()
        response = await call_next(request)
        route = _route_template(request)
        ctx.metrics.requests.labels(route, request.method, str(response.status_code)).inc()
        ctx.metrics.latency.labels(route, request.method).observe(time.perf_counter() - start)
        return response

    return app


def _route_template(request: Request) -> str:
    """The matched route's path template (``/v1/regions/{name}``), so labels stay low-cardinality.

    The router records the matched route in the request scope; unmatched paths share one label.
    """
    route = request.scope.get("route")
    return str(getattr(route, "path", "unmatched"))
