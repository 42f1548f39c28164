"""Where the local harness keeps data, which ports it takes, and its invented credentials."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from switchyard.devenv.harness import Harness
from switchyard.devenv.layout import DEFAULT_PORT_BASE, DevCredentials, DevLayout, DevPorts
from switchyard.devenv.s3 import _PORTS as S3_PORT_ROLES
from switchyard.errors import ConfigError


@pytest.mark.parametrize("raw", ["abc", "25400.5", "", "80", "1023", "65336", "-1"])
def test_bad_port_base_is_a_config_error_naming_the_variable(raw: str, tmp_path: Path) -> None:
    env = {"SWITCHYARD_DEV_PORT_BASE": raw, "SWITCHYARD_DEV_DIR": str(tmp_path)}
    with pytest.raises(ConfigError) as excinfo:
        DevLayout.from_env(env)
    assert excinfo.value.field == "SWITCHYARD_DEV_PORT_BASE"
    assert "SWITCHYARD_DEV_PORT_BASE" in str(excinfo.value)


@pytest.mark.parametrize("raw", ["1024", "30000", "65335"])
def test_port_base_in_range_is_used(raw: str, tmp_path: Path) -> None:
    env = {"SWITCHYARD_DEV_PORT_BASE": raw, "SWITCHYARD_DEV_DIR": str(tmp_path)}
    layout = DevLayout.from_env(env)
    assert layout.ports.base == int(raw)
    assert layout.root == tmp_path.resolve()


def test_default_layout_uses_default_base(tmp_path: Path) -> None:
    layout = DevLayout.from_env({"SWITCHYARD_DEV_DIR": str(tmp_path)})
    assert layout.ports.base == DEFAULT_PORT_BASE


def every_port(harness: Harness) -> list[int]:
    ports = [
        harness.control_db.port,
        *(db.port for db in harness.region_dbs.values()),
        harness.kafka.port,
        harness.knot.port,
        harness.pdns.dns_port,
        harness.pdns.api_port,
        harness.vault.port,
        harness.prometheus.port,
        harness.prometheus.api_port,
    ]
    for store in harness.s3.values():
        ports += [store.port(role) for role in S3_PORT_ROLES]
    return ports


def test_every_server_gets_its_own_port_within_the_block(tmp_path: Path) -> None:
    # Building the harness starts nothing; it only names folders, ports and credentials.
    harness = Harness(DevLayout(root=tmp_path, ports=DevPorts()))
    ports = every_port(harness)
    assert len(ports) == len(set(ports))
    # Two checkouts with bases 100 apart must not collide.
    assert all(DEFAULT_PORT_BASE <= p < DEFAULT_PORT_BASE + 100 for p in ports)
    named = list(DevPorts().all().values())
    assert len(named) == len(set(named))


def test_credentials_are_created_once_in_a_private_file(tmp_path: Path) -> None:
    path = tmp_path / "dev" / "dev-credentials.json"

    first = DevCredentials.load_or_create(path)

    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    written = path.read_bytes()
    second = DevCredentials.load_or_create(path)
    assert second == first
    assert path.read_bytes() == written
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_credentials_differ_between_machines(tmp_path: Path) -> None:
    a = DevCredentials.load_or_create(tmp_path / "a.json")
    b = DevCredentials.load_or_create(tmp_path / "b.json")
    assert a.vault_root_token != b.vault_root_token
    assert a.tsig_secret != b.tsig_secret


def test_credentials_repr_shows_no_secret(tmp_path: Path) -> None:
    creds = DevCredentials.load_or_create(tmp_path / "creds.json")
    secrets = [
        creds.vault_root_token,
        creds.postgres_password,
        creds.s3_access_key,
        creds.s3_secret_key,
        creds.tsig_secret,
        creds.pdns_api_key,
        *creds.api_tokens.values(),
    ]
    for text in (repr(creds), str(creds), f"{creds!r}", repr([creds])):
        for secret in secrets:
            assert secret not in text
