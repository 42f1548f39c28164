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
from switchyard.errors import FatalError
from switchyard.observability.logging import Redactor
from switchyard.ports.objects import ObjectStore
from switchyard.settings import load_settings

# The servers the failover loop needs (no S3 or Prometheus); the broker carries CDC, which a
# planned switchover waits for.
FAILOVER_SERVERS = ("pg-control", "pg-region-a", "pg-region-b", "kafka", "knot", "pdns", "vault")
# The same with each region's bucket, so the snapshot gate reads real generations.
GATED_FAILOVER_SERVERS = (*FAILOVER_SERVERS, "s3-region-a", "s3-region-b")

# What the failover tests and benchmark use: 1 s probes, no cooldown, a short leader lease.
FAST_FAILOVER = {"cooldown_seconds": 0, "lease_ttl_seconds": 4, "step_timeout_seconds": 2}
# The lag and snapshot gates must read a figure: an unknown one blocks an automatic failover.
GATES_MUST_KNOW = {"unknown_gates": "block"}

# Restoring runs the golden questions against the staged index.
RESTORE_TIMEOUT_SECONDS = 300.0


def prepare_stores(h: Harness) -> tuple[list[Region], list[RegionState]]:
    """Migrate the control-plane store and each region's store, logging in as the API process
    does (its AppRole, secrets from Vault). Returns the regions newly recorded and each region's
    recorded state. The topology file must be written first."""
    core = build_core(load_settings(h.api.settings_env()), Redactor())
    try:
        added = prepare_store(core)
    finally:
        core.engine.dispose()
    states = []
    # The region schemas too with the API's login: a runtime's own may not migrate (nor read
    # the database's owner password).
    api = load_settings(h.api.settings_env())
    for region in h.runtimes:
        store = build_region_store(api, region, Redactor())
        try:
            states.append(prepare_region_store(store))
        finally:
            store.engine.dispose()
    return added, states


def start_failover_stack(
    h: Harness,
    *,
    gates: bool = False,
    probe_interval_seconds: float = 1.0,
    probe_timeout_seconds: float = 0.5,
) -> None:
    """The API, both runtimes, the CDC processes and the three controllers on the running
    servers, probing every ``probe_interval_seconds`` (see ``FAST_FAILOVER``); the topology is
    written and the stores migrated first.

    ``gates``: the servers include both buckets (``GATED_FAILOVER_SERVERS``); every region
    serves a published snapshot generation before the controllers start, and a gate whose
    figure is unknown blocks (``GATES_MUST_KNOW``), so an automatic failover happens only on
    the lag the CDC processes report and the generations the buckets hold."""
    from switchyard.devenv.topology_file import write_topology

    failover = {**FAST_FAILOVER, **(GATES_MUST_KNOW if gates else {})}
    write_topology(
        h,
        h.api.topology_path,
        interval_seconds=probe_interval_seconds,
        timeout_seconds=probe_timeout_seconds,
        failover=failover,
    )
    prepare_stores(h)
    h.up(["api", *(r.name for r in h.runtimes.values())])
    h.up([c.name for c in h.cdc.values()])
    if gates:
        publish_snapshots(h, "region-a")
    h.up([c.name for c in h.controllers.values()])


def harness_buckets(h: Harness) -> dict[str, ObjectStore]:
    """Each region's bucket on the harness's SeaweedFS, with the harness's S3 login."""
    from switchyard.adapters.objects_s3 import S3ObjectStore
    from switchyard.domain.secrets import Secret

    return {
        region: S3ObjectStore(
            s3.endpoint_url,
            s3.bucket,
            access_key_id=h.creds.s3_access_key,
            secret_access_key=Secret(h.creds.s3_secret_key),
        )
        for region, s3 in h.s3.items()
    }


def publish_snapshots(h: Harness, source: str) -> int:
    """Publish ``source``'s index to its bucket, copy it to every other bucket, and have every
    region's runtime restore it (golden-question gate included), so each serves the newest
    generation. Returns the generation."""
    from datetime import UTC, datetime

    import requests

    from switchyard.dialog.store import IndexStore
    from switchyard.snapshots.publish import publish
    from switchyard.snapshots.replicate import replicate

    buckets = harness_buckets(h)
    index = IndexStore(h.runtimes[source].data_dir / source / "index")
    published = publish(index, buckets[source], region=source, now=lambda: datetime.now(UTC))
    for region, bucket in buckets.items():
        if region != source:
            replicate(buckets[source], bucket, generation=published.generation)
    operator = {"Authorization": f"Bearer {h.creds.api_tokens['operator']}"}
    for region, runtime in h.runtimes.items():
        restored = requests.post(
            f"{runtime.url}/v1/index/restore",
            json={"generation": published.generation},
            headers=operator,
            timeout=RESTORE_TIMEOUT_SECONDS,
        )
        if restored.status_code != 200:
            raise FatalError(
                f"{region} could not restore generation {published.generation}: "
                f"{restored.status_code} {restored.text[:300]}"
            )
    return published.generation


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
