"""Bring the harness's stores and Switchyard processes up the way the demo, the end-to-end
tests and the benchmarks all need them: one place, so they cannot drift apart."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from switchyard.bootstrap import build_core, build_region_store, prepare_region_store, prepare_store
from switchyard.db.region_state import RegionState
from switchyard.devenv.harness import Harness
from switchyard.devenv.layout import DevLayout, DevPorts
from switchyard.domain.region import Region
from switchyard.observability.logging import Redactor
from switchyard.settings import load_settings

# The servers the failover loop needs (no S3 or Prometheus); the broker carries CDC, which a
# planned switchover waits for.
FAILOVER_SERVERS = ("pg-control", "pg-region-a", "pg-region-b", "kafka", "knot", "pdns", "vault")

# What the failover tests and benchmark use: 1 s probes, no cooldown, a short leader lease.
FAST_FAILOVER = {"cooldown_seconds": 0, "lease_ttl_seconds": 4, "step_timeout_seconds": 2}


def prepare_stores(h: Harness) -> tuple[list[Region], list[RegionState]]:
    """Migrate the control-plane store and each region's store, logging in as the processes
    will (AppRole, secrets from Vault). Returns the regions newly recorded and each region's
    recorded state. The topology file must be written first."""
    core = build_core(load_settings(h.api.settings_env()), Redactor())
    try:
        added = prepare_store(core)
    finally:
        core.engine.dispose()
    states = []
    for region, runtime in h.runtimes.items():
        store = build_region_store(load_settings(runtime.settings_env()), region, Redactor())
        try:
            states.append(prepare_region_store(store))
        finally:
            store.engine.dispose()
    return added, states


def start_failover_stack(h: Harness) -> None:
    """The API, both runtimes, the CDC processes and the three controllers on the running
    servers, probing at 1 s (see ``FAST_FAILOVER``); the topology is written and the stores
    migrated first."""
    from switchyard.devenv.topology_file import write_topology

    write_topology(
        h, h.api.topology_path, interval_seconds=1.0, timeout_seconds=0.5, failover=FAST_FAILOVER
    )
    prepare_stores(h)
    h.up(["api", *(r.name for r in h.runtimes.values())])
    h.up([c.name for c in h.cdc.values()])
    h.up([c.name for c in h.controllers.values()])


@contextmanager
def private_harness(prefix: str, servers: Sequence[str], port_base: int) -> Iterator[Harness]:
    """``servers`` up in a fresh folder on ports from ``port_base``; everything stopped and
    deleted afterwards (tests and benchmarks that break or reroute servers)."""
    # Not under pytest's tmp dir: PostgreSQL runs as another user that must reach its folder.
    root = Path(tempfile.mkdtemp(prefix=f"switchyard-{prefix}-"))
    root.chmod(0o755)
    harness = Harness(DevLayout(root=root, ports=DevPorts(port_base)))
    try:
        harness.up(servers)
        yield harness
    finally:
        try:
            harness.down()
        finally:
            shutil.rmtree(root, ignore_errors=True)
