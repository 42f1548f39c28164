"""What the API needs from the rest of the process, built once by ``bootstrap``."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from sqlalchemy.engine import Engine

from switchyard.api.auth import TokenTable
from switchyard.observability.metrics import ApiMetrics, ReplicationGauges
from switchyard.ports.control import ControlStore
from switchyard.ports.objects import ObjectStore
from switchyard.ports.replication import ReplicationMonitor


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
    # Intents, failovers and drills: each call is its own transaction (the loop uses the same
    # store, so the API and the loop cannot disagree about the rules of an intent).
    control: ControlStore
    # Lag between regions (GET /v1/replication), and the gauges each read refreshes.
    replication: ReplicationMonitor | None = None
    replication_gauges: ReplicationGauges | None = None
    # Each region's snapshot bucket (GET /v1/replication reports generations and age).
    snapshot_stores: Mapping[str, ObjectStore] | None = None
