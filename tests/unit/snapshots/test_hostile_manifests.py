"""A snapshot manifest in a bucket is hostile: whoever can write the bucket writes it. Each case
plants one crafted manifest and restores it: the restore is refused with the field named, and
nothing on disk changed (the store, and a sentinel folder beside it that a traversing segment
id would have emptied), the live index and the region's active marker neither."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from support.dialog import HashEmbedder, numbered_docs
from support.files import intact, sentinel, tree
from support.hostile import Body, climbing_through_staging, rename_segment
from support.snapshots import passing_gate
from switchyard.adapters.objects_memory import InMemoryObjectStore
from switchyard.dialog.chunking import CHUNKER_VERSION
from switchyard.dialog.index import build_index
from switchyard.dialog.live_index import LiveIndex
from switchyard.dialog.store import IndexStore, ManifestError, UnsafePathError, file_digest
from switchyard.snapshots.layout import (
    LATEST,
    Pointer,
    SnapshotManifest,
    manifest_key,
    read_active,
    read_manifest,
)
from switchyard.snapshots.publish import publish
from switchyard.snapshots.replicate import replicate
from switchyard.snapshots.restore import Staged, restore_live
from switchyard.snapshots.sync import sync_once

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)


class Standby:
    """A bucket holding one good generation, and a region's store that restored it; beside
    the store, a sentinel folder a hostile manifest aims at."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.embedder = HashEmbedder()
        self.bucket = InMemoryObjectStore("bucket", location="here", clock=lambda: NOW)
        source = IndexStore(tmp / "source")
        LiveIndex(build_index([], self.embedder), source).activate(
            build_index(numbered_docs(6), self.embedder)
        )
        self.good = publish(source, self.bucket, region="region-a", now=lambda: NOW).generation
        self.store = IndexStore(tmp / "region" / "index")
        self.live = LiveIndex(build_index([], self.embedder), self.store)
        self.restore(self.good)
        self.sentinel = sentinel(tmp / "outside" / "victim")

    def restore(self, generation: int) -> Staged:
        return restore_live(
            self.live,
            self.bucket,
            region="region-b",
            generation=generation,
            model_id=self.embedder.model_id,
            chunker_version=CHUNKER_VERSION,
            gate=passing_gate,
            now=lambda: NOW,
        )

    def good_body(self) -> Body:
        body: Body = json.loads(read_manifest(self.bucket, self.good).to_bytes())
        return body

    def plant(self, body: Body | bytes) -> int:
        """``body`` as the bucket's next generation; returns its number."""
        generation = self.good + 1
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.bucket.put(manifest_key(generation), data)
        return generation


@pytest.fixture
def standby(tmp_path: Path) -> Standby:
    return Standby(tmp_path)


def _segment_id(body: Body, segment_id: str) -> None:
    rename_segment(body, 0, segment_id)


def _set(*path_and_value: Any) -> Callable[[Body], None]:
    """Sets the field at a path (keys and indexes) to the last argument."""
    *path, value = path_and_value

    def mutate(body: Body) -> None:
        target: Any = body
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value

    return mutate


SEGMENT = ("index", "segments", 0)
FILE3 = (*SEGMENT, "files", 3)
HOSTILE: dict[str, tuple[Callable[[Body], None], str]] = {
    "id climbing out of the store": (
        lambda b: _segment_id(b, "../../../outside/victim"),
        "manifest.index.segments[0].id",
    ),
    "absolute id": (
        lambda b: _segment_id(b, "/tmp/victim"),  # replaced by the sentinel's path below
        "manifest.index.segments[0].id",
    ),
    "over-long id": (lambda b: _segment_id(b, "a" * 4000), "manifest.index.segments[0].id"),
    "non-hex id": (lambda b: _segment_id(b, "g" * 64), "manifest.index.segments[0].id"),
    "upper-case hex id": (lambda b: _segment_id(b, "A" * 64), "manifest.index.segments[0].id"),
    "non-hex digest": (
        _set(*FILE3, "sha256", "../../../latest"),
        "manifest.index.segments[0].files[3].sha256",
    ),
    "digest one digit short": (
        _set(*FILE3, "sha256", "0" * 63),
        "manifest.index.segments[0].files[3].sha256",
    ),
    "path climbing out": (
        _set(*FILE3, "path", "segments/../../../outside/victim/keep.txt"),
        "manifest.index.segments[0].files[3].path",
    ),
    "absolute path": (
        _set(*FILE3, "path", "/etc/passwd"),
        "manifest.index.segments[0].files[3].path",
    ),
    "backslash in path": (
        _set(*FILE3, "path", "segments\\..\\..\\victim"),
        "manifest.index.segments[0].files[3].path",
    ),
    "NUL in path": (
        _set(*FILE3, "path", "segments/x\x00/hnsw.faiss"),
        "manifest.index.segments[0].files[3].path",
    ),
    "negative size": (_set(*FILE3, "size", -1), "manifest.index.segments[0].files[3].size"),
    "size as text": (_set(*FILE3, "size", "12"), "manifest.index.segments[0].files[3].size"),
    "deleted id climbing out": (
        _set(*SEGMENT, "deleted", ["../../etc"]),
        "manifest.index.segments[0].deleted[0]",
    ),
    "generation as text": (_set("generation", "2"), "manifest.generation"),
    "generation as boolean": (_set("generation", True), "manifest.generation"),
    "negative chunk count": (_set("index", "chunks", -5), "manifest.index.chunks"),
    "model id with a newline": (
        _set("index", "model_id", "test/hash-embedder\nforged log line"),
        "manifest.index.model_id",
    ),
    "over-long model id": (_set("index", "model_id", "m" * 5000), "manifest.index.model_id"),
    "source region climbing out": (_set("source_region", "../x"), "manifest.source_region"),
    "created at not a time": (_set("created_at", "yesterday"), "manifest.created_at"),
    "unknown field": (_set("index", "segments", 0, "extra", 1), "manifest.index.segments[0]"),
    "repeated segment": (
        lambda b: b["index"]["segments"].append(b["index"]["segments"][0]),
        "manifest.index.segments[1].id",
    ),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_a_hostile_manifest_is_refused_naming_the_field_and_nothing_is_touched(
    standby: Standby, case: str
) -> None:
    mutate, field = HOSTILE[case]
    body = standby.good_body()
    body["generation"] = standby.good + 1
    mutate(body)
    if case == "absolute id":  # aimed at the sentinel itself
        _segment_id(body, str(standby.sentinel))
    generation = standby.plant(body)
    live, current = standby.live.current, standby.store.current_path()
    before = tree(standby.tmp)

    with pytest.raises(ManifestError) as refused:
        standby.restore(generation)

    assert refused.value.field == field
    assert refused.value.code == "manifest_invalid"
    assert f"generations/{generation:010d}.json: {field}: " in str(refused.value)
    assert tree(standby.tmp) == before
    assert intact(standby.sentinel)
    assert standby.live.current is live
    assert standby.store.current_path() == current
    marker = read_active(standby.bucket, "region-b")
    assert marker is not None
    assert marker.generation == standby.good


@pytest.mark.parametrize(
    ("data", "field"),
    [
        (b"\x00\xff not json", "manifest"),
        (b'{"format": 1, "format": 1}', "manifest"),  # a repeated key: which one counts?
        (b'{"format": NaN}', "manifest"),
        (b"[" * 100_000 + b"]" * 100_000, "manifest"),  # nesting deep enough to crash a parser
        (b"[]", "manifest"),
    ],
)
def test_a_manifest_that_is_not_a_json_object_is_refused(
    standby: Standby, data: bytes, field: str
) -> None:
    generation = standby.plant(data)
    before = tree(standby.tmp)

    with pytest.raises(ManifestError) as refused:
        standby.restore(generation)

    assert refused.value.field == field
    assert tree(standby.tmp) == before


def test_an_id_climbing_out_through_a_sibling_staging_folder_deletes_nothing(
    standby: Standby,
) -> None:
    """The deleting attack in full (on the unchecked code it empties the sentinel and fills it
    with downloaded files): a first segment the standby lacks, so its staging folder is made
    first, and a second whose id climbs out through that folder to the sentinel."""
    body = climbing_through_staging(standby.good_body(), standby.good + 1, 2, "outside/victim")
    generation = standby.plant(body)
    before = tree(standby.tmp)

    with pytest.raises(ManifestError) as refused:
        standby.restore(generation)

    assert refused.value.field == "manifest.index.segments[1].id"
    assert tree(standby.tmp) == before
    assert intact(standby.sentinel)


def test_a_link_planted_in_staging_is_not_followed(standby: Standby) -> None:
    """``staging`` made a link to a folder outside, holding a folder named like the segment
    the next generation needs: emptying "the staging folder" would empty that one."""
    new = _new_generation(standby)
    segment_id = _missing_segment(standby, new)
    victim = sentinel(standby.tmp / "outside" / "staging-target" / segment_id)
    (standby.store.root / "staging").symlink_to(victim.parent, target_is_directory=True)
    before = tree(standby.tmp)

    with pytest.raises(UnsafePathError) as refused:
        standby.restore(new)

    assert refused.value.field is not None
    assert refused.value.field.startswith("manifest.index.segments[")
    assert refused.value.field.endswith("].id")
    assert tree(standby.tmp) == before
    assert intact(victim)


def test_a_link_planted_in_segments_is_not_followed(standby: Standby) -> None:
    """A link under ``segments/`` named like a segment, pointing at a copy of its files
    elsewhere: the store would read (and later serve) files from outside itself."""
    new = _new_generation(standby)
    segment_id = _missing_segment(standby, new)
    elsewhere = standby.tmp / "outside" / "copy"
    elsewhere.mkdir(parents=True)
    (standby.store.root / "segments" / segment_id).symlink_to(elsewhere, target_is_directory=True)
    before = tree(standby.tmp)

    with pytest.raises(UnsafePathError) as refused:
        standby.restore(new)

    assert refused.value.field is not None
    assert refused.value.field.endswith("].id")
    assert tree(standby.tmp) == before


def _new_generation(standby: Standby) -> int:
    """A second, well-formed generation in the bucket with a segment the standby lacks."""
    source = IndexStore(standby.tmp / "source")
    LiveIndex(build_index([], standby.embedder), source).activate(
        build_index(numbered_docs(7, salt="new"), standby.embedder)
    )
    return publish(source, standby.bucket, region="region-a", now=lambda: NOW).generation


def _missing_segment(standby: Standby, generation: int) -> str:
    manifest = SnapshotManifest.parse(standby.bucket.get(manifest_key(generation)).data, "planted")
    missing = [s.id for s in manifest.index.segments if not standby.store.has_segment(s.id)]
    assert missing
    return missing[0]


def test_replication_and_sync_refuse_a_hostile_manifest_and_copy_nothing(
    standby: Standby,
) -> None:
    """The control plane's ``snapshot sync`` (and ``snapshot replicate``) must not carry a
    planted manifest, or its blobs, into the other regions' buckets."""
    body = climbing_through_staging(standby.good_body(), standby.good + 1, 2, "outside/victim")
    generation = standby.plant(body)
    good = read_manifest(standby.bucket, standby.good)
    pointer = Pointer(generation, good.index.content_digest, "region-a", NOW)
    standby.bucket.put(LATEST, pointer.to_bytes())
    other = InMemoryObjectStore("other", location="elsewhere", clock=lambda: NOW)

    with pytest.raises(ManifestError) as refused:
        replicate(standby.bucket, other, generation=generation)
    synced = sync_once({"region-a": standby.bucket, "region-b": other}, "region-a", None)

    assert refused.value.field == "manifest.index.segments[1].id"
    assert [(s.region, s.ok) for s in synced] == [("region-b", False)]
    assert "manifest.index.segments[1].id" in synced[0].sentence
    assert list(other.list("")) == []


def test_publishing_a_hostile_local_manifest_uploads_nothing(tmp_path: Path) -> None:
    """A manifest on the publishing region's disk naming files outside its store (with their
    true sizes and digests): ``snapshot publish`` would upload them to the bucket."""
    embedder = HashEmbedder()
    store = IndexStore(tmp_path / "source")
    LiveIndex(build_index([], embedder), store).activate(build_index(numbered_docs(3), embedder))
    secret = sentinel(tmp_path / "outside" / "secret")
    current = store.current_path()
    assert current is not None
    body = json.loads(current.read_text())
    climbing = "../../outside/secret"  # source/segments/../../outside/secret
    body["segments"][0]["id"] = climbing
    for f in body["segments"][0]["files"]:
        name = f["path"].rsplit("/", 1)[1]
        (secret / name).write_bytes(b"not for the bucket: " + name.encode())
        f["path"] = f"segments/{climbing}/{name}"
        f["size"] = (secret / name).stat().st_size
        f["sha256"] = file_digest(secret / name)
    current.write_text(json.dumps(body))
    bucket = InMemoryObjectStore("bucket", location="here", clock=lambda: NOW)

    with pytest.raises(ManifestError) as refused:
        publish(store, bucket, region="region-a", now=lambda: NOW)

    assert refused.value.field == "manifest.segments[0].id"
    assert list(bucket.list("")) == []


def test_a_refusal_never_repeats_the_hostile_value(standby: Standby) -> None:
    """The message goes to logs and API answers: it names the field and what is wrong, and
    leaves out what the attacker wrote (terminal escapes, forged log lines)."""
    forged = "\x1b[2J\nlevel=info event=restore.ok"
    in_model_id = standby.good_body()
    in_model_id["index"]["model_id"] = forged
    as_a_key = standby.good_body()
    as_a_key["index"]["segments"][0][forged] = 1
    cases = {"manifest.index.model_id": in_model_id, "manifest.index.segments[0]": as_a_key}

    for n, (field, body) in enumerate(cases.items(), start=1):
        body["generation"] = standby.good + n
        standby.bucket.put(manifest_key(standby.good + n), json.dumps(body).encode())
        with pytest.raises(ManifestError) as refused:
            standby.restore(standby.good + n)

        assert refused.value.field == field
        assert "restore.ok" not in str(refused.value)
        assert "\x1b" not in str(refused.value)
