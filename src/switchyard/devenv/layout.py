"""Where the local harness keeps its data, and which loopback ports it uses.

Everything lives under one git-ignored folder (``.local/`` in the checkout by default,
``SWITCHYARD_DEV_DIR`` to move it). Ports are ``SWITCHYARD_DEV_PORT_BASE`` (default 25400)
plus a fixed offset per server, so two checkouts can run side by side by choosing bases
at least 100 apart.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from switchyard.errors import ConfigError

DEFAULT_PORT_BASE = 25400
HOST = "127.0.0.1"

# Offsets from the port base. SeaweedFS needs five ports per instance plus gRPC ports.
_OFFSETS = {
    "pg_control": 0,
    "pg_region_a": 1,
    "pg_region_b": 2,
    "kafka": 10,
    "s3_region_a": 20,
    "s3_region_b": 40,
    "knot": 60,
    "pdns_dns": 61,
    "pdns_api": 62,
    "vault": 70,
    "prometheus": 80,
    "api": 90,
    # One port number for every region's runtime: each listens on its own loopback address.
    "runtime": 91,
    # The controllers' metrics, one per vantage point.
    "controller_region_a": 92,
    "controller_region_b": 93,
    "controller_witness": 94,
    # The CDC processes' metrics.
    "cdc_source_a": 95,
    "cdc_source_b": 96,
    "cdc_sink_a": 97,
    "cdc_sink_b": 98,
}


@dataclass(frozen=True)
class DevPorts:
    base: int = DEFAULT_PORT_BASE

    def __getitem__(self, name: str) -> int:
        return self.base + _OFFSETS[name]

    def all(self) -> Mapping[str, int]:
        return {name: self.base + off for name, off in _OFFSETS.items()}


def repo_root() -> Path:
    return Path(__file__).resolve().parents[3]


def write_private(path: Path, text: str, *, exclusive: bool = False) -> None:
    """Write ``text`` to a file only its owner can read (mode 0600 from creation on).

    The mode is set by ``open`` itself, so the content is never readable by others, not even
    for an instant (``write_text`` then ``chmod`` would leave a window); a file that already
    exists with a looser mode is tightened before anything is written. ``exclusive`` refuses
    to replace an existing file (``FileExistsError``).
    """
    flags = os.O_WRONLY | os.O_CREAT | (os.O_EXCL if exclusive else os.O_TRUNC)
    fd = os.open(path, flags, 0o600)
    os.fchmod(fd, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)


@dataclass(frozen=True)
class DevLayout:
    root: Path
    ports: DevPorts

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> DevLayout:
        env = os.environ if environ is None else environ
        raw_base = env.get("SWITCHYARD_DEV_PORT_BASE", str(DEFAULT_PORT_BASE))
        try:
            base = int(raw_base)
        except ValueError:
            raise ConfigError(
                "environment", "SWITCHYARD_DEV_PORT_BASE", f"not an integer: {raw_base!r}"
            ) from None
        if not 1024 <= base <= 65535 - 200:
            raise ConfigError(
                "environment", "SWITCHYARD_DEV_PORT_BASE", f"must be in 1024..65335, got {base}"
            )
        root = Path(env.get("SWITCHYARD_DEV_DIR", str(repo_root() / ".local")))
        return cls(root=root.resolve(), ports=DevPorts(base))

    def data(self, service: str) -> Path:
        return self.root / service

    def log(self, service: str) -> Path:
        return self.root / "log" / f"{service}.log"

    def pidfile(self, service: str) -> Path:
        return self.root / "run" / f"{service}.pid"

    @property
    def credentials_path(self) -> Path:
        return self.root / "dev-credentials.json"


@dataclass(frozen=True)
class DevCredentials:
    """Credentials the harness invents for its own servers, kept in a 0600 file.

    They exist only on this machine. The control plane never reads this file: the harness
    seeds the secrets it needs into Vault, and the control plane reads them from there.
    """

    vault_root_token: str
    postgres_password: str
    s3_access_key: str
    s3_secret_key: str
    tsig_secret: str  # base64, HMAC-SHA256
    pdns_api_key: str
    api_tokens: Mapping[str, str]  # role -> bearer token

    def __repr__(self) -> str:
        return "DevCredentials(**********)"

    @classmethod
    def load_or_create(cls, path: Path) -> DevCredentials:
        if path.exists():
            return cls(**json.loads(path.read_text()))
        creds = cls(
            vault_root_token="dev-root-" + secrets.token_hex(12),
            postgres_password=secrets.token_urlsafe(18),
            s3_access_key="SY" + secrets.token_hex(9).upper(),
            s3_secret_key=secrets.token_urlsafe(30),
            tsig_secret=base64.b64encode(secrets.token_bytes(32)).decode(),
            pdns_api_key=secrets.token_urlsafe(24),
            api_tokens={
                role: f"sy-{role}-" + secrets.token_urlsafe(24)
                for role in ("viewer", "operator", "admin")
            },
        )
        path.parent.mkdir(parents=True, exist_ok=True)
        write_private(path, json.dumps(creds.__dict__, indent=2), exclusive=True)
        return creds
