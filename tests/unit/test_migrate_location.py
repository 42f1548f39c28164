"""Where the control-plane migrations are found (no database needed)."""

from __future__ import annotations

from pathlib import Path

import pytest

from switchyard.db import migrate
from switchyard.errors import ConfigError


def test_head_revision_is_read_from_the_repository_migrations() -> None:
    assert migrate.head_revision() == "0002"


def test_override_pointing_nowhere_names_the_variable(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv(migrate.MIGRATIONS_DIR_ENV, str(tmp_path))

    with pytest.raises(ConfigError, match=migrate.MIGRATIONS_DIR_ENV):
        migrate.head_revision()


def test_override_is_honoured(monkeypatch: pytest.MonkeyPatch) -> None:
    repository_migrations = Path(__file__).resolve().parents[2] / "migrations"
    monkeypatch.setenv(migrate.MIGRATIONS_DIR_ENV, str(repository_migrations))

    assert migrate.migrations_dir() == repository_migrations
