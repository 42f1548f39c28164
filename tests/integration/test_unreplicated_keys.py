"""The bounded key comparison (``PostgresRegionDatabases.unreplicated``) on real PostgreSQL,
for when CDC positions cannot tell the loss: only the source's newest turns are compared, and
only their keys are looked up in the target."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, insert, text

from switchyard.adapters.regions_postgres import PostgresRegionDatabases
from switchyard.db import migrate
from switchyard.db.engine import make_engine
from switchyard.db.region_tables import dialog_sessions, dialog_turns
from switchyard.devenv.harness import Harness

START = datetime(2026, 1, 1, tzinfo=UTC)  # only stamps rows: no clock compares with it


@pytest.fixture(scope="module")
def target_engine(harness: Harness) -> Iterator[Engine]:
    url = harness.region_dbs["region-a"].fresh_database("switchyard_test_region_target")
    migrate.upgrade(url, schema=migrate.REGION)
    engine = make_engine(url)
    yield engine
    engine.dispose()


def _turns(engine: Engine, sid: uuid.UUID, seqs: range) -> None:
    with engine.begin() as c:
        c.execute(text("TRUNCATE dialog_turns, dialog_sessions"))
        c.execute(insert(dialog_sessions).values(id=sid, region="region-a", epoch=1))
        c.execute(
            insert(dialog_turns),
            [
                {
                    "session_id": sid,
                    "seq": seq,
                    "role": "user",
                    "text": "hi",
                    "kind": "message",
                    "region": "region-a",
                    "epoch": 1,
                    "created_at": START + timedelta(seconds=seq),
                }
                for seq in seqs
            ],
        )


def test_only_the_newest_turns_are_compared(region_store: Engine, target_engine: Engine) -> None:
    sid = uuid.uuid4()
    _turns(region_store, sid, range(1, 51))  # the source holds turns 1..50
    _turns(target_engine, sid, range(11, 46))  # the target lacks 1..10 and 46..50
    regions = PostgresRegionDatabases({"region-a": region_store, "region-b": target_engine})

    gap = regions.unreplicated("region-a", "region-b", newest=20)
    assert (gap.compared, gap.missing) == (20, 5)  # 31..50: 46..50 missing, 1..10 not looked at
    assert gap.oldest_missing_at == START + timedelta(seconds=46)

    everything = regions.unreplicated("region-a", "region-b", newest=1000)
    assert (everything.compared, everything.missing) == (50, 15)
    assert everything.oldest_missing_at == START + timedelta(seconds=1)


def test_an_empty_source_lacks_nothing(region_store: Engine, target_engine: Engine) -> None:
    regions = PostgresRegionDatabases({"region-a": region_store, "region-b": target_engine})
    gap = regions.unreplicated("region-a", "region-b")
    assert (gap.missing, gap.oldest_missing_at, gap.compared) == (0, None, 0)
