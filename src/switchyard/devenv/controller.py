"""The controllers of the failover loop, one per vantage point, run as managed processes.

Each carries only the Vault AppRole login and the control database's address in its
environment (like the API) and serves its metrics on its own loopback port.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping

from switchyard.devenv.layout import HOST, DevLayout, repo_root
from switchyard.devenv.postgres import PostgresCluster
from switchyard.devenv.process import ProcessSpec, http_ok
from switchyard.devenv.vault import OpenBao

VANTAGES = ("region-a", "region-b", "witness")


class ControllerServer:
    def __init__(
        self, vantage: str, layout: DevLayout, control_db: PostgresCluster, vault: OpenBao
    ) -> None:
        self.vantage = vantage
        self.name = f"controller-{vantage.removeprefix('region-')}"
        self.metrics_port = layout.ports[f"controller_{vantage.replace('-', '_')}"]
        self.topology_path = layout.root / "topology.yaml"
        self._control_db = control_db
        self._vault = vault

    def settings_env(self) -> dict[str, str]:
        db = self._control_db
        return {
            "SWITCHYARD_TOPOLOGY_FILE": str(self.topology_path),
            "SWITCHYARD_VANTAGE": self.vantage,
            "SWITCHYARD_API_HOST": HOST,
            "SWITCHYARD_METRICS_PORT": str(self.metrics_port),
            "SWITCHYARD_CONTROL_DB_URL": f"postgresql+psycopg://{HOST}:{db.port}/{db.database}",
            **self._vault.login_env("controller"),
        }

    def prepare(self) -> None:
        """The topology file is written and the stores migrated before start."""

    def process(self) -> ProcessSpec:
        return ProcessSpec(
            self.name,
            [sys.executable, "-m", "switchyard.cli", "controller", "--vantage", self.vantage],
            env=self.settings_env(),
            cwd=repo_root(),
        )

    def ready(self) -> bool:
        return http_ok(f"http://{HOST}:{self.metrics_port}/metrics")

    def configure(self) -> None:
        """Nothing to configure after start."""

    def endpoints(self) -> Mapping[str, str]:
        return {"metrics": f"http://{HOST}:{self.metrics_port}/metrics"}
