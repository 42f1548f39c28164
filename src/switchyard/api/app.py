"""The FastAPI application factory. Routes parse and call services; they never act."""

from __future__ import annotations

from fastapi import FastAPI

from switchyard import __version__
from switchyard.api import problems
from switchyard.api.context import ApiContext
from switchyard.api.middleware import install_request_metrics
from switchyard.api.routes import events, failovers, health, regions, replication


def create_app(ctx: ApiContext) -> FastAPI:
    app = FastAPI(
        title="Switchyard control plane",
        version=__version__,
        description="Regions, failovers, drills and the audit log of a multi-region RAG service.",
    )
    app.state.ctx = ctx
    app.state.tokens = ctx.tokens
    problems.install(app)
    for router in (
        health.router,
        regions.router,
        events.router,
        failovers.router,
        replication.router,
    ):
        app.include_router(router)
    install_request_metrics(app, ctx.metrics)
    return app
