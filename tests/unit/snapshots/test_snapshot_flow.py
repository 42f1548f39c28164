"""Publish, replicate, restore and retention on the in-memory object store (the same suite's
cases against SeaweedFS are in tests/integration/test_snapshots.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from support.dialog import HashEmbedder
from support.dialog import numbered_docs as _docs
from support.snapshots import failing_gate, passing_gate
from switchyard.adapters.objects_memory import InMemoryObjectStore
from switchyard.dialog.chunking import CHUNKER_VERSION
from switchyard.dialog.index import build_index, with_documents
from switchyard.dialog.live_index import LiveIndex
from switchyard.dialog.store import IndexMismatchError, IndexStore
from switchyard.errors import ConflictError
from switchyard.ports.objects import ChecksumMismatch, ObjectStoreUnavailable
from switchyard.snapshots.layout import blob_key, generations, read_active, read_pointer
from switchyard.snapshots.publish import publish
from switchyard.snapshots.replicate import replicate
from switchyard.snapshots.restore import GateFailedError, restore_live
from switchyard.snapshots.retention import doomed_generations, prune
from switchyard.snapshots.status import generations_behind, read_status

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)


class Region:
    def __init__(self, tmp: Path, name: str, embedder: HashEmbedder) -> None:
        self.name = name
        # The bucket stamps last_modified with the same fixed clock as everything else here:
        # retention judges blob age by it, and a real clock would make the test date-bound.
        self.bucket = InMemoryObjectStore(
            f"bucket-{name}", location=f"endpoint-{name}", clock=lambda: NOW
        )
        self.store = IndexStore(tmp / name)
        self.embedder = embedder
        self.live = LiveIndex(build_index([], embedder), self.store)

    def publish(self) -> int:
        return publish(self.store, self.bucket, region=self.name, now=lambda: NOW).generation

    def restore(self, generation: int | None = None, gate=passing_gate):  # type: ignore[no-untyped-def]
        return restore_live(
            self.live,
            self.bucket,
            region=self.name,
            generation=generation,
            model_id=self.embedder.model_id,
            chunker_version=CHUNKER_VERSION,
            gate=gate,
            now=lambda: NOW,
        )


@pytest.fixture
def regions(tmp_path: Path) -> tuple[Region, Region]:
    embedder = HashEmbedder()
    a, b = Region(tmp_path, "region-a", embedder), Region(tmp_path, "region-b", embedder)
    a.live.activate(build_index(_docs(20), embedder))
    return a, b


def test_a_published_generation_restores_to_the_same_answers(
    regions: tuple[Region, Region],
) -> None:
    a, b = regions
    generation = a.publish()
    copied = replicate(a.bucket, b.bucket)
    staged = b.restore()

    assert (generation, copied.generation, staged.manifest.generation) == (1, 1, 1)
    assert copied.copied_files == len(staged.manifest.files)
    query = a.embedder.embed(["topic 7 rule"])[0]
    assert b.live.current.vector_search(query, 5) == a.live.current.vector_search(query, 5)
    assert b.live.current.info == a.live.current.info
    marker = read_active(b.bucket, "region-b")
    assert marker is not None
    assert marker.generation == 1
    assert b.store.current_path() == staged.path


def test_publishing_twice_uploads_nothing_new(regions: tuple[Region, Region]) -> None:
    a, _ = regions
    first = publish(a.store, a.bucket, region=a.name, now=lambda: NOW)
    again = publish(a.store, a.bucket, region=a.name, now=lambda: NOW)

    assert first.uploaded_files == first.files
    assert not first.unchanged
    assert again.unchanged
    assert again.generation == 1
    assert again.uploaded_files == 0


def test_a_small_change_uploads_only_the_new_segment(regions: tuple[Region, Region]) -> None:
    a, _ = regions
    a.publish()
    a.live.activate(with_documents(a.live.current, _docs(1, salt="edited"), a.embedder))
    second = publish(a.store, a.bucket, region=a.name, now=lambda: NOW)

    new_segment = a.live.current.segments[-1]
    new_bytes = sum(
        f.size for s in a.store.read_manifest().segments if s.id == new_segment.id for f in s.files
    )
    assert second.generation == 2
    assert second.uploaded_bytes == new_bytes
    assert second.uploaded_bytes < second.total_bytes / 5


def test_replication_streams_between_endpoints_and_copies_on_one(tmp_path: Path) -> None:
    embedder = HashEmbedder()
    a = Region(tmp_path, "region-a", embedder)
    a.live.activate(build_index(_docs(5), embedder))
    a.publish()
    elsewhere = InMemoryObjectStore("b", location="other-endpoint")
    same_endpoint = InMemoryObjectStore("c", location="endpoint-region-a")

    streamed = replicate(a.bucket, elsewhere)
    copied = replicate(a.bucket, same_endpoint)

    assert streamed.server_side == 0
    assert streamed.copied_files > 0
    assert copied.server_side == copied.copied_files > 0
    assert read_pointer(elsewhere)[0] == read_pointer(a.bucket)[0]


def test_a_corrupted_blob_is_refused_and_the_old_index_stays(
    regions: tuple[Region, Region],
) -> None:
    a, b = regions
    a.publish()
    replicate(a.bucket, b.bucket)
    before = b.live.current
    biggest = max(a.store.read_manifest().files, key=lambda f: f.size)
    b.bucket.corrupt(blob_key(biggest.sha256))

    with pytest.raises(ChecksumMismatch, match="do not match"):
        b.restore()
    assert b.live.current is before
    assert read_active(b.bucket, "region-b") is None


def test_replicating_a_corrupted_blob_refuses_it_on_arrival(regions: tuple[Region, Region]) -> None:
    a, b = regions
    a.publish()
    biggest = max(a.store.read_manifest().files, key=lambda f: f.size)
    a.bucket.corrupt(blob_key(biggest.sha256))

    with pytest.raises(ChecksumMismatch, match="refused"):
        replicate(a.bucket, b.bucket)
    assert b.bucket.head(blob_key(biggest.sha256)) is None
    assert read_pointer(b.bucket) == (None, None)


def test_a_manifest_from_another_model_is_refused(tmp_path: Path) -> None:
    other = Region(tmp_path, "region-a", HashEmbedder(model_id="other/model"))
    other.live.activate(build_index(_docs(5), other.embedder))
    other.publish()
    b = Region(tmp_path, "region-b", HashEmbedder())
    replicate(other.bucket, b.bucket)
    before = b.live.current

    with pytest.raises(IndexMismatchError, match="other/model"):
        b.restore()
    assert b.live.current is before


def test_a_failed_gate_keeps_the_old_index_and_says_why(regions: tuple[Region, Region]) -> None:
    a, b = regions
    a.publish()
    replicate(a.bucket, b.bucket)
    before = b.live.current

    with pytest.raises(GateFailedError, match=r"recall@5 0\.10 < 0\.90"):
        b.restore(gate=failing_gate)
    assert b.live.current is before
    assert read_active(b.bucket, "region-b") is None


def test_any_generation_can_be_restored(regions: tuple[Region, Region]) -> None:
    a, b = regions
    a.publish()
    a.live.activate(with_documents(a.live.current, _docs(1, salt="second"), a.embedder))
    a.publish()
    replicate(a.bucket, b.bucket, generation=1)
    replicate(a.bucket, b.bucket)

    b.restore(1)
    assert "second" not in " ".join(c.text for c in b.live.current.chunks)
    b.restore(2)
    assert b.live.current.documents["doc0.md"].sha256.startswith("0second")


def test_racing_publishers_both_land_one_after_the_other(tmp_path: Path) -> None:
    embedder = HashEmbedder()
    a1 = Region(tmp_path, "one", embedder)
    a2 = Region(tmp_path, "two", embedder)
    a2.bucket = a1.bucket  # two publishers, one bucket
    a1.live.activate(build_index(_docs(3), embedder))
    a2.live.activate(build_index(_docs(4), embedder))
    real_put = a1.bucket.put
    raced = []

    def put_racing(key: str, data: bytes, **kw: object) -> str:
        # The first time publisher two writes its manifest, publisher one gets in first.
        if key.startswith("generations/") and not raced:
            raced.append(key)
            a1.publish()
        return real_put(key, data, **kw)  # type: ignore[arg-type]

    a1.bucket.put = put_racing  # type: ignore[method-assign]
    second = publish(a2.store, a2.bucket, region="two", now=lambda: NOW)

    assert second.generation == 2
    assert second.attempts == 2
    latest, _ = read_pointer(a1.bucket)
    assert latest is not None
    assert latest.generation == 2
    assert latest.source_region == "two"
    assert generations(a1.bucket) == [1, 2]


def test_an_unreachable_bucket_fails_publish_clearly(regions: tuple[Region, Region]) -> None:
    a, _ = regions
    a.bucket.set_reachable(False)
    with pytest.raises(ObjectStoreUnavailable):
        a.publish()
    a.bucket.set_reachable(True)
    assert a.publish() == 1


def test_retention_keeps_the_newest_and_what_regions_serve(regions: tuple[Region, Region]) -> None:
    a, b = regions
    for i in range(5):
        a.live.activate(with_documents(a.live.current, _docs(1, salt=f"v{i}"), a.embedder))
        a.publish()
        if i == 0:
            replicate(a.bucket, b.bucket)
            b.bucket = a.bucket  # region-b's marker goes into a's bucket for this test
            b.restore(1)

    result = prune(
        a.bucket, keep_last=2, regions=["region-a", "region-b"], now=NOW + timedelta(days=1)
    )

    assert result.kept == (1, 4, 5)
    assert result.deleted_generations == (2, 3)
    assert result.deleted_blobs > 0
    for g in (1, 5):  # what is kept still restores, every byte verified
        fresh = Region(a.store.root.parent / f"fresh{g}", "region-c", a.embedder)
        fresh.bucket = a.bucket
        fresh.restore(g)


def test_retention_never_deletes_young_blobs(regions: tuple[Region, Region]) -> None:
    a, _ = regions
    a.publish()
    a.live.activate(with_documents(a.live.current, _docs(1, salt="x"), a.embedder))
    a.publish()
    result = prune(a.bucket, keep_last=1, regions=[], now=NOW)
    assert result.deleted_generations == (1,)
    assert result.deleted_blobs == 0


def test_doomed_generations_keep_last_n_and_in_use() -> None:
    assert doomed_generations([1, 2, 3, 4, 5], 2, {1}) == [2, 3]
    assert doomed_generations([1, 2], 5, set()) == []


def test_status_counts_generations_behind(regions: tuple[Region, Region]) -> None:
    a, b = regions
    a.publish()
    replicate(a.bucket, b.bucket)
    b.restore()
    a.live.activate(with_documents(a.live.current, _docs(1, salt="more"), a.embedder))
    a.publish()
    a.live.activate(with_documents(a.live.current, _docs(2, salt="again"), a.embedder))
    a.publish()

    statuses = read_status({"region-a": a.bucket, "region-b": b.bucket})
    assert generations_behind(statuses, "region-a", "region-b") == 2
    a.bucket.set_reachable(False)
    statuses = read_status({"region-a": a.bucket, "region-b": b.bucket})
    assert statuses["region-a"].error
    assert generations_behind(statuses, "region-a", "region-b") is None


def test_publish_gives_up_when_the_pointer_never_settles(regions: tuple[Region, Region]) -> None:
    a, _ = regions
    real_put = a.bucket.put

    def always_moved(key: str, data: bytes, **kw: object) -> str:
        if key == "latest":
            from switchyard.ports.objects import PreconditionFailed

            raise PreconditionFailed("moved")
        return real_put(key, data, **kw)  # type: ignore[arg-type]

    a.bucket.put = always_moved  # type: ignore[method-assign]
    with pytest.raises(ConflictError, match="kept moving"):
        a.publish()
