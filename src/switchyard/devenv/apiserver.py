"""The control-plane API run by the demo as a managed process, wired to the harness.

Its environment carries only what ``Settings`` accepts: the Vault address and an AppRole
login. Every other secret (database password, API tokens) it reads from Vault itself.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from pathlib import Path

from switchyard.devenv.layout import HOST, DevLayout
from switchyard.devenv.postgres import PostgresCluster
from switchyard.devenv.process import ProcessSpec, http_ok
from switchyard.devenv.vault import OpenBao


class ApiServer:
    name = "api"

    def __init__(self, layout: DevLayout, control_db: PostgresCluster, vault: OpenBao) -> None:
        self.port = layout.ports["api"]
        self.topology_path = layout.root / "topology.yaml"
        self._control_db = control_db
        self._vault = vault

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def settings_env(self) -> dict[str, str]:
        return {
            "SWITCHYARD_TOPOLOGY_FILE": str(self.topology_path),
            "SWITCHYARD_VANTAGE": "witness",
            "SWITCHYARD_API_HOST": HOST,
            "SWITCHYARD_API_PORT": str(self.port),
            "SWITCHYARD_CONTROL_DB_URL": f"postgresql+psycopg://{HOST}:{self._control_db.port}/{self._control_db.database}",
            **self._vault.login_env("api"),
        }

    def prepare(self) -> None:
        """The topology file is written by the demo before start."""

    def process(self) -> ProcessSpec:
        return ProcessSpec(
            self.name,
            [sys.executable, "-m", "switchyard.cli", "api"],
            env=self.settings_env(),
            cwd=Path.cwd(),
        )

    def ready(self) -> bool:
        return http_ok(f"{self.url}/readyz")

    def configure(self) -> None:
        """Nothing: the store was migrated before the API started."""

    def endpoints(self) -> Mapping[str, str]:
        return {"api": self.url, "docs": f"{self.url}/docs"}
