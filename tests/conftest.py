"""Session fixtures that give tests the real servers.

The local harness (``switchyard dev up``) starts whatever is not running and the session
stops, at the end, only what it started itself — so a developer's ``make up`` stays up.
Environment variables point the suite at servers run elsewhere instead:
SWITCHYARD_TEST_CONTROL_DB_URL, SWITCHYARD_TEST_VAULT_ADDR + SWITCHYARD_TEST_VAULT_TOKEN,
KAFKA_BOOTSTRAP_SERVERS.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from switchyard.devenv.harness import Harness

TEST_CONTROL_DB = "switchyard_test"


@pytest.fixture(scope="session")
def harness() -> Iterator[Harness]:
    """Every local server, running and answering its protocol."""
    h = Harness.from_env()
    results = h.up()
    yield h
    started = [r.name for r in results if r.action == "started"]
    if started:
        h.down(started)


@pytest.fixture(scope="session")
def control_db_url(harness: Harness) -> str:
    """SQLAlchemy URL of an empty database on the control-plane PostgreSQL (no migrations).

    The database is dropped and created afresh once per session, apart from the demo's.
    """
    url = os.environ.get("SWITCHYARD_TEST_CONTROL_DB_URL")
    if url:
        return url
    return harness.control_db.fresh_database(TEST_CONTROL_DB)


@pytest.fixture(scope="session")
def vault_addr(harness: Harness) -> str:
    return os.environ.get("SWITCHYARD_TEST_VAULT_ADDR") or harness.vault.addr


@pytest.fixture(scope="session")
def vault_root_token(harness: Harness) -> str:
    return os.environ.get("SWITCHYARD_TEST_VAULT_TOKEN") or harness.creds.vault_root_token


@pytest.fixture(scope="session")
def kafka_bootstrap(harness: Harness) -> str:
    """Bootstrap servers of a Kafka-protocol broker (a real cluster if KAFKA_BOOTSTRAP_SERVERS)."""
    return os.environ.get("KAFKA_BOOTSTRAP_SERVERS") or harness.kafka.bootstrap_servers
