"""The CDC processes of each region, run as managed processes: a source (streams the region's
changes while it is primary) and a sink (applies the other region's changes while it is a
standby). Both run in every region, so a promotion reverses the direction with no restart.

Like the runtimes, each carries only the Vault AppRole login and the topology in its
environment, and serves its metrics on its own loopback port.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping

from switchyard.devenv.layout import HOST, DevLayout, repo_root
from switchyard.devenv.process import ProcessSpec, http_ok
from switchyard.devenv.vault import OpenBao

KINDS = ("source", "sink")


class CdcServer:
    def __init__(self, kind: str, region: str, layout: DevLayout, vault: OpenBao) -> None:
        self.kind = kind
        self.region = region
        short = region.removeprefix("region-")
        self.name = f"cdc-{kind}-{short}"
        self.metrics_port = layout.ports[f"cdc_{kind}_{short}"]
        self.topology_path = layout.root / "topology.yaml"
        self._vault = vault

    def settings_env(self) -> dict[str, str]:
        return {
            "SWITCHYARD_TOPOLOGY_FILE": str(self.topology_path),
            "SWITCHYARD_API_HOST": HOST,
            "SWITCHYARD_METRICS_PORT": str(self.metrics_port),
            **self._vault.login_env(f"cdc-{self.region}"),
        }

    def prepare(self) -> None:
        """The topology file is written and the region stores migrated before start."""

    def process(self) -> ProcessSpec:
        return ProcessSpec(
            self.name,
            [sys.executable, "-m", "switchyard.cli", "cdc", self.kind, "--region", self.region],
            env=self.settings_env(),
            cwd=repo_root(),
        )

    def ready(self) -> bool:
        return http_ok(f"http://{HOST}:{self.metrics_port}/metrics")

    def configure(self) -> None:
        """Nothing to configure after start."""

    def endpoints(self) -> Mapping[str, str]:
        return {"metrics": f"http://{HOST}:{self.metrics_port}/metrics"}
