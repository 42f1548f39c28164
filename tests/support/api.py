"""A control-plane API on in-memory stores for tests that only read (one viewer token)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

from switchyard.adapters.control_memory import InMemoryControlStore
from switchyard.api.auth import TokenTable
from switchyard.api.context import ApiContext
from switchyard.db import migrate
from switchyard.domain.region import Region
from switchyard.domain.secrets import Secret
from switchyard.observability.metrics import ApiMetrics, ReplicationGauges
from switchyard.ports.objects import ObjectStore
from switchyard.ports.replication import ReplicationMonitor

VIEWER = {"Authorization": "Bearer viewer-token-0123456789"}


def read_only_context(
    regions: Sequence[Region],
    now: datetime,
    *,
    replication: ReplicationMonitor,
    snapshot_stores: Mapping[str, ObjectStore] | None = None,
) -> ApiContext:
    """``regions`` as the control store records them at ``now``; no route used may touch the
    store's engine."""
    metrics = ApiMetrics.create("test")
    return ApiContext(
        engine=None,  # type: ignore[arg-type]
        tokens=TokenTable.from_secret("test", {"viewer": Secret("viewer-token-0123456789")}),
        metrics=metrics,
        expected_revision=migrate.head_revision(),
        control=InMemoryControlStore(lambda: now, list(regions)),
        replication=replication,
        replication_gauges=ReplicationGauges.create(metrics.registry),
        snapshot_stores=snapshot_stores,
    )
