"""What the API needs from the rest of the process, built once by ``bootstrap``."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.engine import Engine

from switchyard.api.auth import TokenTable
from switchyard.observability.metrics import ApiMetrics


@dataclass(frozen=True)
class ApiContext:
    """Everything a route may use, built once per process and never replaced.

    Routes reach the store only through ``engine`` (one unit of work per request, see
    ``deps.get_session``); ``tokens`` holds digests, never a token in clear.
    """

    engine: Engine
    tokens: TokenTable
    metrics: ApiMetrics
    # The Alembic head this build expects; /readyz fails until the store is migrated to it.
    expected_revision: str
