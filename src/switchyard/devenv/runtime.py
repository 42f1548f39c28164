"""Each region's dialog runtime, run by the demo as a managed process wired to the harness.

Like the API, its environment carries only the Vault address and its region's own AppRole
login (``runtime-<region>``); its database login (a lease) and the API tokens it may check
(viewer, operator) it gets from Vault. It listens on its region's own
loopback address (127.0.1.1 for region-a, 127.0.2.1 for region-b), the address the GSLB
record points at, so a DNS answer tells which region a client reaches.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping

from switchyard.devenv.dns import REGION_ADDRESSES
from switchyard.devenv.layout import DevLayout, repo_root
from switchyard.devenv.process import ProcessSpec, http_ok
from switchyard.devenv.vault import OpenBao

# Model load plus, on a fresh checkout, embedding the whole demo corpus.
RUNTIME_START_TIMEOUT_SECONDS = 240.0


class RuntimeServer:
    start_timeout_seconds = RUNTIME_START_TIMEOUT_SECONDS

    def __init__(self, region: str, layout: DevLayout, vault: OpenBao) -> None:
        self.region = region
        self.name = f"runtime-{region.removeprefix('region-')}"
        self.host = REGION_ADDRESSES[region]
        self.port = layout.ports["runtime"]
        self.topology_path = layout.root / "topology.yaml"
        self.data_dir = layout.root / "runtime"
        self._vault = vault

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def settings_env(self) -> dict[str, str]:
        return {
            "SWITCHYARD_TOPOLOGY_FILE": str(self.topology_path),
            **self._vault.login_env(f"runtime-{self.region}"),
            "SWITCHYARD_DATA_DIR": str(self.data_dir),
            "SWITCHYARD_CORPUS_DIR": str(repo_root() / "corpus" / "demo"),
            "SWITCHYARD_GOLDEN_FILE": str(repo_root() / "corpus" / "golden" / "questions-v1.yaml"),
            "HF_HUB_OFFLINE": "1",
        }

    def snapshot_env(self) -> dict[str, str]:
        """What ``switchyard snapshot ...`` needs on this machine: the topology, this runtime's
        data dir, and the snapshot tool's own Vault login (every region's bucket, the
        operator token; not this runtime's database logins)."""
        return {**self.settings_env(), **self._vault.login_env("snapshot")}

    def prepare(self) -> None:
        """The topology file is written and the region store migrated before start."""

    def process(self) -> ProcessSpec:
        return ProcessSpec(
            self.name,
            [sys.executable, "-m", "switchyard.cli", "runtime", "--region", self.region],
            env=self.settings_env(),
            cwd=repo_root(),
        )

    def ready(self) -> bool:
        # /healthz, not /readyz: a runtime whose database is down is still up (and says so).
        return http_ok(f"{self.url}/healthz")

    def configure(self) -> None:
        """Nothing to configure after start."""

    def endpoints(self) -> Mapping[str, str]:
        return {"chat": f"{self.url}/v1/chat", "docs": f"{self.url}/docs"}
