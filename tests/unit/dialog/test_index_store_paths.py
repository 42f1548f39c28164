"""The index store never reads, writes or deletes outside its folder: not through a crafted
manifest on its disk, not through a symbolic link planted in it. Each test keeps a sentinel
folder beside the store and compares the whole file system before and after."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from support.dialog import HashEmbedder, numbered_docs
from support.files import intact, sentinel, tree
from switchyard.dialog.chunking import CHUNKER_VERSION
from switchyard.dialog.index import SearchIndex, build_index, with_documents
from switchyard.dialog.live_index import LiveIndex
from switchyard.dialog.store import IndexMismatchError, IndexStore, ManifestError, UnsafePathError

EMBEDDER = HashEmbedder()


def _saved(root: Path) -> tuple[IndexStore, SearchIndex]:
    store = IndexStore(root)
    index = build_index(numbered_docs(4), EMBEDDER)
    store.save(index)
    return store, index


def _load(store: IndexStore) -> SearchIndex:
    return store.load(model_id=EMBEDDER.model_id, chunker_version=CHUNKER_VERSION)


def test_a_local_manifest_naming_a_folder_outside_is_refused(tmp_path: Path) -> None:
    """A manifest on disk whose segment id climbs out of the store (its file paths following
    it, so they agree with it): loading names the field and reads nothing outside. It stays an
    IndexMismatchError, so a runtime starting on such a store rebuilds its index."""
    store, _ = _saved(tmp_path / "index")
    victim = sentinel(tmp_path / "outside" / "victim")
    current = store.current_path()
    assert current is not None
    body = json.loads(current.read_text())
    climbing = "../../outside/victim"
    body["segments"][0]["id"] = climbing
    for f in body["segments"][0]["files"]:
        f["path"] = f"segments/{climbing}/{f['path'].rsplit('/', 1)[1]}"
    current.write_text(json.dumps(body))
    before = tree(tmp_path)

    with pytest.raises(ManifestError) as refused:
        _load(store)

    assert refused.value.field == "manifest.segments[0].id"
    assert isinstance(refused.value, IndexMismatchError)
    assert current.name in str(refused.value)
    assert tree(tmp_path) == before
    assert intact(victim)


def test_current_pointing_outside_the_store_is_refused(tmp_path: Path) -> None:
    store, _ = _saved(tmp_path / "index")
    current = store.current_path()
    assert current is not None
    outside = tmp_path / "outside.json"
    shutil.copy(current, outside)
    store.current_link.unlink()
    store.current_link.symlink_to(outside)
    before = tree(tmp_path)

    with pytest.raises(UnsafePathError):
        _load(store)
    with pytest.raises(UnsafePathError):
        store.current_path()
    assert tree(tmp_path) == before


def test_a_segment_file_linked_to_a_copy_outside_is_refused(tmp_path: Path) -> None:
    """Same bytes, so the digest matches: only the path check notices the file is not the
    store's own."""
    store, index = _saved(tmp_path / "index")
    chunks = store.root / "segments" / index.segments[0].id / "chunks.jsonl"
    copy = tmp_path / "outside-chunks.jsonl"
    shutil.copy(chunks, copy)
    chunks.unlink()
    chunks.symlink_to(copy)
    before = tree(tmp_path)

    with pytest.raises(UnsafePathError, match=r"chunks\.jsonl"):
        _load(store)
    assert tree(tmp_path) == before


def test_saving_through_a_linked_segments_folder_is_refused(tmp_path: Path) -> None:
    """``segments`` made a link to a folder elsewhere: saving would write there, and pruning
    would delete every folder there that no manifest lists (the sentinel)."""
    root = tmp_path / "index"
    root.mkdir()
    elsewhere = tmp_path / "outside"
    victim = sentinel(elsewhere / "victim")
    (root / "segments").symlink_to(elsewhere, target_is_directory=True)
    live = LiveIndex(build_index([], EMBEDDER), IndexStore(root))
    before = tree(tmp_path)

    with pytest.raises(UnsafePathError):
        live.activate(build_index(numbered_docs(3), EMBEDDER))

    assert tree(tmp_path) == before
    assert intact(victim)


def test_pruning_neither_follows_nor_removes_a_planted_link(tmp_path: Path) -> None:
    store, index = _saved(tmp_path / "index")
    victim = sentinel(tmp_path / "outside" / "victim")
    planted = store.root / "segments" / ("f" * 64)
    planted.symlink_to(victim, target_is_directory=True)
    store.save(with_documents(index, numbered_docs(2, salt="next"), EMBEDDER))

    removed = store.prune(1)

    assert f"segments/{'f' * 64}" not in removed
    assert planted.is_symlink()
    assert intact(victim)


def test_a_generations_link_is_not_taken_for_a_manifest(tmp_path: Path) -> None:
    """A link in ``generations/`` named like a manifest: retention neither lists nor reads it,
    and loading it by name is refused."""
    store, _ = _saved(tmp_path / "index")
    current = store.current_path()
    assert current is not None
    outside = tmp_path / "outside.json"
    shutil.copy(current, outside)
    link = store.root / "generations" / "00000099-0123456789ab.json"
    link.symlink_to(outside)

    assert link not in list(store.manifests())
    with pytest.raises(UnsafePathError):
        store.read_manifest(link)
    assert store.prune(1) == []
    assert link.is_symlink()


@pytest.mark.parametrize(
    "name",
    ["../../outside/victim", "/abs/victim", "a/../../b", "a\\..\\b", "x\x00y", "", "a" * 300],
)
def test_staging_refuses_a_name_that_is_not_a_plain_relative_one(tmp_path: Path, name: str) -> None:
    store = IndexStore(tmp_path / "index")
    victim = sentinel(tmp_path / "outside" / "victim")
    before = tree(tmp_path)

    with pytest.raises(UnsafePathError):
        store.staging(name)
    with pytest.raises(UnsafePathError):
        store.has_segment(name)

    assert tree(tmp_path) == before
    assert intact(victim)
