"""Request metrics for any of our FastAPI apps (the control-plane API, the dialog runtime)."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from fastapi import FastAPI, Request, Response

from switchyard.observability.metrics import ApiMetrics


def install_request_metrics(app: FastAPI, metrics: ApiMetrics) -> None:
    """Count every request and time it, labelled by the matched route template."""

    @app.middleware("http")
    async def measure(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        start = time.perf_counter()
        response = await call_next(request)
        route = route_template(request)
        metrics.requests.labels(route, request.method, str(response.status_code)).inc()
        metrics.latency.labels(route, request.method).observe(time.perf_counter() - start)
        return response


def route_template(request: Request) -> str:
    """The matched route's path template (``/v1/regions/{name}``), so labels stay low-cardinality.

    The router records the matched route in the request scope; unmatched paths share one label.
    """
    route = request.scope.get("route")
    return str(getattr(route, "path", "unmatched"))
