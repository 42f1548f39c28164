"""The region database goes away and comes back: the runtime keeps running, answers 503 and
fails /readyz meanwhile, and recovers by itself. Runs a private PostgreSQL so that stopping it
disturbs no other test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from support.harness import private_harness
from support.runtime import runtime_app
from switchyard.db import migrate
from switchyard.db.engine import make_engine, unit_of_work
from switchyard.db.region_state import seed_region_state
from switchyard.devenv.harness import Harness
from switchyard.dialog.embedding import MiniLmEmbedder
from switchyard.dialog.index import SearchIndex
from switchyard.domain.region import RegionRole

SERVER = "pg-region-a"
QUESTION = "How do I connect to the VPN?"


@pytest.fixture(scope="module")
def private_db() -> Iterator[Harness]:
    with private_harness("outage-test", [SERVER]) as harness:
        yield harness


def test_database_outage_gives_503_and_the_runtime_recovers(
    private_db: Harness, minilm: MiniLmEmbedder, demo_index: SearchIndex
) -> None:
    url = private_db.region_dbs["region-a"].url()
    migrate.upgrade(url, schema=migrate.REGION)
    engine = make_engine(url)
    with unit_of_work(engine) as session:
        seed_region_state(session=session, region="region-a", role=RegionRole.PRIMARY, epoch=1)

    try:
        with TestClient(runtime_app(engine, minilm, demo_index)) as client:
            before = client.post("/v1/chat", json={"message": QUESTION})
            assert before.status_code == 200

            private_db.down([SERVER])
            during = client.post(
                "/v1/chat", json={"session_id": before.json()["session_id"], "message": QUESTION}
            )
            ready = client.get("/readyz")
            alive = client.get("/healthz")

            private_db.up([SERVER])
            after = client.post(
                "/v1/chat", json={"session_id": before.json()["session_id"], "message": QUESTION}
            )
            ready_again = client.get("/readyz")
    finally:
        engine.dispose()

    assert during.status_code == 503
    assert during.json()["code"] == "unavailable"
    assert "Retry-After" in during.headers
    assert ready.status_code == 503
    assert ready.json()["checks"]["database"].startswith("unreachable")
    assert alive.status_code == 200
    assert after.status_code == 200
    assert after.json()["turn"] == 4  # nothing half-written during the outage
    assert ready_again.status_code == 200
