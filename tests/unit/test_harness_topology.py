"""The topology files the harness writes for the demo and the private stacks are valid: the
demo once wrote a probe timeout equal to its interval, which the topology refuses, and
`make demo` failed on every fresh machine."""

from __future__ import annotations

from pathlib import Path

import pytest

from switchyard.devenv.demo import DEMO_PROBE_INTERVAL_SECONDS
from switchyard.devenv.harness import Harness
from switchyard.devenv.layout import DevLayout
from switchyard.devenv.stacks import FAST_FAILOVER
from switchyard.devenv.topology_file import write_topology
from switchyard.topology import load_topology


@pytest.fixture
def harness(tmp_path: Path) -> Harness:
    return Harness(DevLayout.from_env({"SWITCHYARD_DEV_DIR": str(tmp_path / "dev")}))


@pytest.mark.parametrize(
    ("options", "interval"),
    [
        ({"interval_seconds": DEMO_PROBE_INTERVAL_SECONDS}, DEMO_PROBE_INTERVAL_SECONDS),
        ({"interval_seconds": 1.0, "timeout_seconds": 0.5, "failover": FAST_FAILOVER}, 1.0),
        ({}, 10.0),
    ],
    ids=["demo", "private-stack", "default"],
)
def test_every_harness_topology_loads(
    harness: Harness, tmp_path: Path, options: dict[str, object], interval: float
) -> None:
    topology = load_topology(write_topology(harness, tmp_path / "topology.yaml", **options))
    assert topology.probes.interval_seconds == interval
    assert topology.probes.timeout_seconds < topology.probes.interval_seconds
