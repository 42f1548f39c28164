"""The topology file: valid files parse to frozen values; invalid ones name file and field."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from switchyard.devenv.layout import repo_root
from switchyard.domain.region import RegionRole
from switchyard.errors import ConfigError
from switchyard.topology import load_topology

EXAMPLE = repo_root() / "config" / "topology.example.yaml"


def write(tmp_path: Path, data: Any) -> Path:
    path = tmp_path / "topology.yaml"
    path.write_text(data if isinstance(data, str) else yaml.safe_dump(data))
    return path


def example() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(EXAMPLE.read_text())
    return data


def test_the_shipped_example_is_valid() -> None:
    topo = load_topology(EXAMPLE)
    assert [r.name for r in topo.regions] == ["region-a", "region-b"]
    assert topo.region("region-a").initial_role is RegionRole.PRIMARY
    assert topo.dns.zone.endswith(".")
    assert {p.kind for p in topo.dns.providers} == {"rfc2136", "powerdns"}


def test_values_are_frozen() -> None:
    topo = load_topology(EXAMPLE)
    with pytest.raises(ValueError, match="frozen"):
        topo.regions[0].name = "elsewhere"  # type: ignore[misc]


def assert_config_error(path: Path, field: str, words: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_topology(path)
    assert err.value.source == str(path)
    assert err.value.field == field
    assert words in err.value.problem


def test_bad_url_names_the_region_field(tmp_path: Path) -> None:
    data = example()
    data["regions"][1]["runtime_url"] = "not a url"
    assert_config_error(write(tmp_path, data), "regions[1].runtime_url", "URL")


def test_missing_field_is_named(tmp_path: Path) -> None:
    data = example()
    del data["regions"][0]["database"]["port"]
    assert_config_error(write(tmp_path, data), "regions[0].database.port", "required")


def test_unknown_field_is_refused(tmp_path: Path) -> None:
    data = example()
    data["dns"]["ttl"] = 30
    assert_config_error(write(tmp_path, data), "dns.ttl", "not permitted")


def test_two_primaries_are_refused(tmp_path: Path) -> None:
    data = example()
    data["regions"][1]["initial_role"] = "primary"
    assert_config_error(write(tmp_path, data), "(top level)", "exactly one region")


def test_unknown_dns_provider_kind_is_named(tmp_path: Path) -> None:
    data = example()
    data["dns"]["providers"][0]["kind"] = "bind-files"
    with pytest.raises(ConfigError) as err:
        load_topology(write(tmp_path, data))
    assert err.value.field.startswith("dns.providers[0]")


def test_probe_timeout_must_be_below_interval(tmp_path: Path) -> None:
    data = example()
    data["probes"] = {"interval_seconds": 1, "timeout_seconds": 2}
    assert_config_error(write(tmp_path, data), "probes", "shorter than interval")


def test_invalid_yaml_names_the_line(tmp_path: Path) -> None:
    path = write(tmp_path, "version: 1\nregions: [\n  - name: a\n")
    with pytest.raises(ConfigError) as err:
        load_topology(path)
    assert err.value.field.startswith("line ")


def test_missing_file_is_named(tmp_path: Path) -> None:
    assert_config_error(tmp_path / "absent.yaml", "(file)", "cannot read")
