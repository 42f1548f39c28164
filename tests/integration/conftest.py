"""Integration fixtures: the control-plane store (migrated once per session), a region
store on region-a's PostgreSQL, and the real embedding model with the demo corpus indexed."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from uuid import uuid4

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session

from support.db import migrated_engine as _migrated_engine
from support.db import rollback_session
from switchyard.adapters.objects_s3 import S3ObjectStore
from switchyard.db import migrate
from switchyard.db.engine import make_engine, unit_of_work
from switchyard.db.region_state import seed_region_state
from switchyard.devenv.harness import Harness
from switchyard.dialog.documents import load_corpus
from switchyard.dialog.embedding import MiniLmEmbedder
from switchyard.dialog.index import SearchIndex, build_index
from switchyard.domain.region import RegionRole
from switchyard.domain.secrets import Secret

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def migrated_engine(control_db_url: str) -> Iterator[Engine]:
    """An engine on the shared control database, upgraded to head once per session."""
    yield from _migrated_engine(control_db_url)


@pytest.fixture
def db_session(migrated_engine: Engine) -> Iterator[Session]:
    """A session whose writes are rolled back after the test (savepoint per commit)."""
    yield from rollback_session(migrated_engine)


# -- the dialog runtime ---------------------------------------------------------------------

TEST_REGION_DB = "switchyard_test_region"


@pytest.fixture(scope="session")
def minilm() -> MiniLmEmbedder:
    """The real embedding model, loaded once per session (a few seconds)."""
    embedder = MiniLmEmbedder()
    embedder.load()
    return embedder


@pytest.fixture(scope="session")
def demo_index(minilm: MiniLmEmbedder) -> SearchIndex:
    """The demo corpus indexed with the real model, once per session."""
    return build_index(load_corpus(REPO_ROOT / "corpus" / "demo"), minilm)


@pytest.fixture(scope="session")
def region_db_url(harness: Harness) -> str:
    """An empty database on region-a's PostgreSQL, migrated to the region schema's head."""
    url = harness.region_dbs["region-a"].fresh_database(TEST_REGION_DB)
    migrate.upgrade(url, schema=migrate.REGION)
    return url


@pytest.fixture(scope="session")
def region_engine(region_db_url: str) -> Iterator[Engine]:
    engine = make_engine(region_db_url)
    yield engine
    engine.dispose()


@pytest.fixture
def region_store(region_engine: Engine) -> Engine:
    """The region database emptied, with region-a recorded as primary at epoch 1."""
    with region_engine.begin() as connection:
        connection.execute(text("TRUNCATE dialog_turns, dialog_sessions, documents, region_state"))
    with unit_of_work(region_engine) as session:
        seed_region_state(session=session, region="region-a", role=RegionRole.PRIMARY, epoch=1)
    return region_engine


# -- snapshots ---------------------------------------------------------------------------


def snapshot_store(harness: Harness, region: str, bucket: str, **kw: object) -> S3ObjectStore:
    s3 = harness.s3[region]
    return S3ObjectStore(
        s3.endpoint_url,
        bucket,
        access_key_id=harness.creds.s3_access_key,
        secret_access_key=Secret(harness.creds.s3_secret_key),
        part_size=5 << 20,
        multipart_threshold=5 << 20,
        **kw,  # type: ignore[arg-type]
    )


@pytest.fixture
def buckets(harness: Harness) -> Iterator[dict[str, S3ObjectStore]]:
    """A fresh snapshot bucket in each region's SeaweedFS (5 MiB parts, the S3 minimum, so
    small test files go up in several parts)."""
    name = f"snap-{uuid4().hex[:12]}"
    stores = {}
    for region in ("region-a", "region-b"):
        harness.s3[region].client().create_bucket(Bucket=name)
        stores[region] = snapshot_store(harness, region, name)
    yield stores
    # SeaweedFS gives every bucket its own volumes and has a fixed number of them: a bucket
    # left behind by each test would exhaust them over a few runs ("no free volumes left").
    for region, store in stores.items():
        store.delete([info.key for info in store.list("")])
        harness.s3[region].client().delete_bucket(Bucket=name)
