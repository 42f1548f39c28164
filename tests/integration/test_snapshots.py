"""Index snapshots through the harness's two SeaweedFS instances (one per region): the round
trip, and the faults a user relies on being handled — an upload cut short, a corrupted blob,
a manifest from another model, an unreachable endpoint, two publishers racing.

Each test gets fresh buckets, so pointers and generations never leak between tests.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from support.dialog import HashEmbedder, numbered_docs
from support.ports import closed_port
from support.snapshots import passing_gate
from switchyard.adapters.objects_s3 import S3ObjectStore
from switchyard.devenv.harness import Harness
from switchyard.dialog.chunking import CHUNKER_VERSION
from switchyard.dialog.index import build_index, with_documents
from switchyard.dialog.live_index import LiveIndex
from switchyard.dialog.model import Document
from switchyard.dialog.store import IndexMismatchError, IndexStore
from switchyard.domain.secrets import Secret
from switchyard.ports.objects import ChecksumMismatch, ObjectStoreUnavailable
from switchyard.snapshots.layout import (
    SnapshotNotFoundError,
    blob_key,
    generations,
    read_active,
    read_pointer,
)
from switchyard.snapshots.publish import publish
from switchyard.snapshots.replicate import replicate
from switchyard.snapshots.restore import restore_live

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)


class PublisherDiedError(Exception):
    """Stands in for a publisher dying half way through an upload."""


def _docs(n: int, salt: str = "", words: int = 40) -> list[Document]:
    """Padded documents: each chunk's text is a few hundred bytes, like real ones."""
    return numbered_docs(n, salt, words)


class Node:
    """A region's index store and live index (a runtime without its HTTP server)."""

    def __init__(self, root: Path, embedder: HashEmbedder, docs: list[Document]) -> None:
        self.store = IndexStore(root)
        self.embedder = embedder
        self.live = LiveIndex(build_index(docs, embedder), self.store)
        self.live.activate(self.live.current)

    def restore(self, bucket: S3ObjectStore, region: str, generation: int | None = None):  # type: ignore[no-untyped-def]
        return restore_live(
            self.live,
            bucket,
            region=region,
            generation=generation,
            model_id=self.embedder.model_id,
            chunker_version=CHUNKER_VERSION,
            gate=passing_gate,
            now=lambda: NOW,
        )


def _big_docs() -> list[Document]:
    # 4,000 chunks: ~6 MiB of vectors and ~7 MiB of HNSW graph, each sent as 5 MiB parts.
    return _docs(4000, words=10)


def test_publish_replicate_restore_round_trip(
    tmp_path: Path, buckets: dict[str, S3ObjectStore]
) -> None:
    embedder = HashEmbedder(dimension=384)
    a = Node(tmp_path / "a", embedder, _big_docs())
    b = Node(tmp_path / "b", embedder, [])

    published = publish(a.store, buckets["region-a"], region="region-a", now=lambda: NOW)
    copied = replicate(buckets["region-a"], buckets["region-b"])
    staged = b.restore(buckets["region-b"], "region-b")

    assert published.generation == copied.generation == staged.manifest.generation == 1
    assert copied.server_side == 0  # two endpoints: streamed, verified on arrival
    assert copied.copied_bytes == published.uploaded_bytes == published.total_bytes
    query = embedder.embed(["topic 42 rule"])[0]
    assert b.live.current.vector_search(query, 5) == a.live.current.vector_search(query, 5)
    assert b.live.current.keyword_search(["topic", "42"], 5) == a.live.current.keyword_search(
        ["topic", "42"], 5
    )
    marker = read_active(buckets["region-b"], "region-b")
    assert marker is not None
    assert marker.generation == 1


def test_an_upload_cut_short_leaves_no_snapshot_and_the_next_publish_completes_it(
    tmp_path: Path, buckets: dict[str, S3ObjectStore]
) -> None:
    embedder = HashEmbedder(dimension=384)
    a = Node(tmp_path / "a", embedder, _big_docs())
    bucket = buckets["region-a"]
    sent = 0

    def die_half_way(delta: int) -> None:
        nonlocal sent
        sent += delta
        if sent > 6 << 20:
            raise PublisherDiedError

    with pytest.raises(PublisherDiedError):
        publish(a.store, bucket, region="region-a", now=lambda: NOW, progress=die_half_way)

    assert generations(bucket) == []
    assert read_pointer(bucket) == (None, None)
    b = Node(tmp_path / "b", embedder, [])
    with pytest.raises(SnapshotNotFoundError):
        b.restore(bucket, "region-a")
    assert b.live.current.info.chunks == 0  # nothing activated

    completed = publish(a.store, bucket, region="region-a", now=lambda: NOW)
    assert completed.generation == 1
    assert 0 < completed.uploaded_files < completed.files  # what had arrived was kept
    b.restore(bucket, "region-a")
    assert b.live.current.info == a.live.current.info


def test_a_corrupted_segment_is_refused_and_the_old_index_serves_on(
    tmp_path: Path, buckets: dict[str, S3ObjectStore]
) -> None:
    embedder = HashEmbedder(dimension=384)
    a = Node(tmp_path / "a", embedder, _docs(30))
    b = Node(tmp_path / "b", embedder, _docs(3, salt="old"))
    publish(a.store, buckets["region-a"], region="region-a", now=lambda: NOW)
    replicate(buckets["region-a"], buckets["region-b"])
    chunks = next(f for f in a.store.read_manifest().files if f.path.endswith("chunks.jsonl"))
    good = (a.store.root / chunks.path).read_bytes()
    # Damaged at rest: same key, same size, one byte different (stored with its own checksum).
    buckets["region-b"].put(blob_key(chunks.sha256), good[:-2] + b"X\n")
    before = b.live.current

    with pytest.raises(ChecksumMismatch, match=r"chunks\.jsonl"):
        b.restore(buckets["region-b"], "region-b")

    assert b.live.current is before
    assert b.store.load(model_id=embedder.model_id, chunker_version=CHUNKER_VERSION).info == (
        before.info
    )
    assert read_active(buckets["region-b"], "region-b") is None


def test_a_manifest_from_another_embedding_model_is_refused(
    tmp_path: Path, buckets: dict[str, S3ObjectStore]
) -> None:
    other = Node(tmp_path / "a", HashEmbedder(model_id="vendor/other-model"), _docs(5))
    publish(other.store, buckets["region-a"], region="region-a", now=lambda: NOW)
    b = Node(tmp_path / "b", HashEmbedder(), _docs(2))
    before = b.live.current

    with pytest.raises(IndexMismatchError, match="vendor/other-model"):
        b.restore(buckets["region-a"], "region-b")
    assert b.live.current is before
    assert not (b.store.root / "staging").exists() or not any(
        (b.store.root / "staging").iterdir()
    )  # refused before downloading anything


def test_an_unreachable_endpoint_is_retried_then_reported_and_nothing_changes(
    tmp_path: Path, harness: Harness
) -> None:
    waits: list[float] = []
    dead = S3ObjectStore(
        f"http://127.0.0.1:{closed_port()}",
        "snapshots",
        access_key_id="AKIDEXAMPLE",
        secret_access_key=Secret("not-a-real-secret-0123456789"),
        attempts=3,
        connect_timeout=0.3,
        read_timeout=0.3,
        sleep=waits.append,
    )
    embedder = HashEmbedder()
    a = Node(tmp_path / "a", embedder, _docs(3))
    before = a.live.current

    with pytest.raises(ObjectStoreUnavailable) as publishing:
        publish(a.store, dead, region="region-a", now=lambda: NOW)
    with pytest.raises(ObjectStoreUnavailable):
        a.restore(dead, "region-a")

    message = str(publishing.value)
    assert "127.0.0.1" in message
    assert "not-a-real-secret" not in message
    assert len(waits) >= 2
    assert waits[1] > waits[0]
    assert a.live.current is before


def test_two_publishers_racing_one_wins_the_other_retries_on_the_new_pointer(
    tmp_path: Path, buckets: dict[str, S3ObjectStore]
) -> None:
    embedder = HashEmbedder()
    one = Node(tmp_path / "one", embedder, _docs(3))
    two = Node(tmp_path / "two", embedder, _docs(4))
    bucket = buckets["region-a"]
    raced: list[str] = []

    class Racing:
        """The bucket as publisher two sees it: publisher one gets in between its reading of
        ``latest`` and its writing of the manifest."""

        def __getattr__(self, name: str) -> object:
            return getattr(bucket, name)

        def put(self, key: str, data: bytes, **kw: object) -> str:
            if key.startswith("generations/") and not raced:
                raced.append(key)
                publish(one.store, bucket, region="one", now=lambda: NOW)
            return bucket.put(key, data, **kw)  # type: ignore[arg-type]

    second = publish(two.store, Racing(), region="two", now=lambda: NOW)  # type: ignore[arg-type]

    assert raced == ["generations/0000000001.json"]
    assert second.generation == 2
    assert second.attempts == 2
    latest, _ = read_pointer(bucket)
    assert latest is not None
    assert (latest.generation, latest.source_region) == (2, "two")
    assert generations(bucket) == [1, 2]


def test_an_incremental_publish_uploads_only_the_changed_documents_segment(
    tmp_path: Path, buckets: dict[str, S3ObjectStore]
) -> None:
    embedder = HashEmbedder(dimension=384)
    a = Node(tmp_path / "a", embedder, _docs(200))
    bucket = buckets["region-a"]
    publish(a.store, bucket, region="region-a", now=lambda: NOW)
    changed = _docs(2, salt="edited")  # 1 % of the documents
    a.live.activate(with_documents(a.live.current, changed, embedder))

    second = publish(a.store, bucket, region="region-a", now=lambda: NOW)

    new = a.live.current.segments[-1]
    segment_bytes = sum(f.size for f in a.store.read_manifest().files if new.id in f.path)
    assert set(new.documents) == {"doc0.md", "doc1.md"}
    assert second.uploaded_bytes == segment_bytes
    assert second.uploaded_bytes < second.total_bytes * 0.05


def test_the_api_reports_generations_age_and_how_far_a_standby_is_behind(
    tmp_path: Path, buckets: dict[str, S3ObjectStore]
) -> None:
    from fastapi.testclient import TestClient

    from support.api import VIEWER, read_only_context
    from switchyard.adapters.replication_memory import InMemoryReplicationMonitor
    from switchyard.api.app import create_app
    from switchyard.domain.region import Region, RegionRole

    embedder = HashEmbedder()
    a = Node(tmp_path / "a", embedder, _docs(10))
    b = Node(tmp_path / "b", embedder, [])
    # Published five minutes "ago" by the test's own reading of the clock, so the age figure
    # holds on any day (the route reads the wall clock when asked).
    now = datetime.now(UTC)
    published_at = now - timedelta(minutes=5)
    publish(a.store, buckets["region-a"], region="region-a", now=lambda: published_at)
    replicate(buckets["region-a"], buckets["region-b"])
    b.restore(buckets["region-b"], "region-b")
    a.live.activate(with_documents(a.live.current, _docs(1, salt="new"), embedder))
    publish(a.store, buckets["region-a"], region="region-a", now=lambda: now)

    regions = [
        Region("region-a", RegionRole.PRIMARY, 1, now),
        Region("region-b", RegionRole.STANDBY, 1, now),
    ]
    context = read_only_context(
        regions, now, replication=InMemoryReplicationMonitor(), snapshot_stores=buckets
    )
    with TestClient(create_app(context)) as client:
        body = client.get("/v1/replication", headers=VIEWER).json()
        scraped = client.get("/metrics").text

    by_region = {s["region"]: s for s in body["snapshots"]}
    assert by_region["region-a"]["primary"] is True
    assert by_region["region-a"]["latest_generation"] == 2
    standby = by_region["region-b"]
    assert (standby["latest_generation"], standby["active_generation"]) == (1, 1)
    assert standby["generations_behind"] == 1
    assert 300 <= standby["age_seconds"] < 360
    assert standby["error"] is None
    assert 'switchyard_snapshot_generations_behind{region="region-b"} 1.0' in scraped
    assert 'switchyard_snapshot_generation{kind="latest",region="region-a"} 2.0' in scraped
