"""The composition root on real servers: AppRole login, secrets from Vault, store prepared."""

from __future__ import annotations

import io
import json
import logging
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from sqlalchemy.engine import make_url

from support.db import scratch_database
from switchyard.api.auth import Role
from switchyard.bootstrap import build_api_context, build_core, prepare_store
from switchyard.db import migrate
from switchyard.devenv.harness import Harness
from switchyard.devenv.topology_file import write_topology
from switchyard.observability.logging import configure_logging
from switchyard.settings import load_settings


@pytest.fixture
def env(harness: Harness, control_db_url: str, tmp_path: Path) -> Iterator[dict[str, str]]:
    """The demo API's environment, aimed at a scratch database and a fresh topology file."""
    with scratch_database(control_db_url) as url:
        u = make_url(url)
        plain = f"{u.drivername}://{u.username}@{u.host}:{u.port}/{u.database}"
        yield {
            **harness.api.settings_env(),
            "SWITCHYARD_TOPOLOGY_FILE": str(write_topology(harness, tmp_path / "topology.yaml")),
            "SWITCHYARD_CONTROL_DB_URL": plain,
        }


def test_core_reads_every_secret_from_vault(env: dict[str, str], harness: Harness) -> None:
    log = io.StringIO()
    redactor = configure_logging("INFO", "witness", stream=log)
    core = build_core(load_settings(env), redactor)
    try:
        added = prepare_store(core)
        assert [(r.name, r.role.value, r.epoch) for r in added] == [
            ("region-a", "primary", 1),
            ("region-b", "standby", 0),
        ]
        assert prepare_store(core) == []  # idempotent: regions already recorded
        assert migrate.is_current(core.control_db_url.reveal())

        tokens = build_api_context(core).tokens
        viewer = tokens.authenticate(harness.creds.api_tokens["viewer"])
        operator = tokens.authenticate(harness.creds.api_tokens["operator"])
        assert viewer is not None
        assert viewer.role is Role.VIEWER
        assert operator is not None
        assert operator.role is Role.OPERATOR
        assert tokens.authenticate("sy-viewer-guessed") is None

        password = harness.creds.postgres_password
        assert password not in repr(core)
        # A careless log line with the database URL still leaks nothing.
        logging.getLogger("test").error("connecting to %s", core.control_db_url.reveal())
        line = log.getvalue().strip().splitlines()[-1]
        assert json.loads(line)["level"] == "error"
        assert password not in line
        assert harness.creds.api_tokens["viewer"] not in log.getvalue()
    finally:
        core.engine.dispose()
        logging.getLogger().handlers.clear()


def run_cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "switchyard.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_cli_stops_with_exit_2_naming_the_bad_variable(env: dict[str, str]) -> None:
    result = run_cli({**env, "SWITCHYARD_API_PORT": "70000"}, "api")
    assert result.returncode == 2
    assert "SWITCHYARD_API_PORT" in result.stderr


def test_cli_stops_with_exit_2_naming_the_topology_file_and_field(
    env: dict[str, str], tmp_path: Path
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(Path(env["SWITCHYARD_TOPOLOGY_FILE"]).read_text().replace("rfc2136", "bogus"))
    result = run_cli({**env, "SWITCHYARD_TOPOLOGY_FILE": str(bad)}, "migrate")
    assert result.returncode == 2
    assert str(bad) in result.stderr
    assert "dns.providers[0]" in result.stderr


@pytest.mark.parametrize(
    "command", [["runtime", "--region", "nowhere"], ["migrate", "--region", "x"]]
)
def test_an_unknown_region_stops_with_exit_2_naming_the_topology_file(
    env: dict[str, str], command: list[str]
) -> None:
    result = run_cli(env, *command)
    assert result.returncode == 2
    assert env["SWITCHYARD_TOPOLOGY_FILE"] in result.stderr
    assert "no region named" in result.stderr


def test_cli_migrate_region_records_the_initial_role_once(
    env: dict[str, str], harness: Harness
) -> None:
    with scratch_database(harness.region_dbs["region-b"].url()) as url:
        # Point region-b of this test's topology file at the scratch database.
        path = Path(env["SWITCHYARD_TOPOLOGY_FILE"])
        topology = yaml.safe_load(path.read_text())
        topology["regions"][1]["database"]["name"] = make_url(url).database
        path.write_text(yaml.safe_dump(topology))
        first = run_cli(env, "migrate", "--region", "region-b")
        again = run_cli(env, "migrate", "--region", "region-b")
        assert migrate.is_current(url, schema=migrate.REGION)
    assert first.returncode == 0, first.stderr
    assert "role standby, epoch 0" in first.stdout
    assert again.returncode == 0, again.stderr


def test_cli_migrate_prepares_the_store(env: dict[str, str]) -> None:
    result = run_cli(env, "migrate")
    assert result.returncode == 0, result.stderr
    assert "region-a, region-b" in result.stdout
    assert env["SWITCHYARD_VAULT_SECRET_ID"] not in result.stdout + result.stderr
