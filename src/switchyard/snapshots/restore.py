"""Restore a snapshot generation into a runtime's index store, behind checks and the gate.

Steps, each refusing with the index left as it was: the manifest is parsed as hostile input
(``ManifestError`` names the field) and every folder it leads to is checked to lie inside the
store (``UnsafePathError``) before anything is written; its model and chunker must be
this runtime's; segments the store lacks are downloaded into a staging folder and verified
file by file (size and sha256) before they join the store; the generation is loaded (verifying
again) and must pass the golden-question gate; only then does the caller make it live.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from switchyard.dialog.index import SearchIndex
from switchyard.dialog.live_index import LiveIndex
from switchyard.dialog.store import (
    FileEntry,
    IndexMismatchError,
    IndexStore,
    SegmentEntry,
    UnsafePathError,
)
from switchyard.errors import FatalError
from switchyard.ports.objects import ChecksumMismatch, ObjectStore
from switchyard.snapshots.gate import Gate, GateResult
from switchyard.snapshots.layout import (
    ActiveMarker,
    SnapshotManifest,
    SnapshotNotFoundError,
    active_key,
    blob_key,
    in_parallel,
    read_manifest,
    read_pointer,
)

Progress = Callable[[int], None]
# Restores a generation (None: the newest) into a runtime's live index: ``restore_live`` with
# everything but the generation bound.
Restorer = Callable[[int | None], "Staged"]


class GateFailedError(FatalError):
    """The restored index did not answer the golden questions well enough; not activated."""

    code = "snapshot_gate_failed"

    def __init__(self, generation: int, result: GateResult) -> None:
        super().__init__(f"snapshot generation {generation} not activated: {result.reason}")
        self.result = result


@dataclass(frozen=True, slots=True)
class Staged:
    """A verified generation in the store, not yet live."""

    manifest: SnapshotManifest
    index: SearchIndex
    path: Path  # its manifest in the index store
    downloaded_files: int
    downloaded_bytes: int
    gate: GateResult


def latest_generation(objects: ObjectStore) -> int | None:
    pointer, _ = read_pointer(objects)
    return None if pointer is None else pointer.generation


def stage(
    objects: ObjectStore,
    index_store: IndexStore,
    generation: int,
    *,
    model_id: str,
    chunker_version: str,
    gate: Gate,
    progress: Progress | None = None,
) -> Staged:
    """Fetch, verify, load and gate ``generation``; raises before anything would go live."""
    manifest = read_manifest(objects, generation)
    try:
        manifest.index.check_compatible(model_id=model_id, chunker_version=chunker_version)
    except IndexMismatchError as exc:
        raise IndexMismatchError(f"snapshot generation {generation} refused: {exc}") from None
    _check_paths(index_store, manifest)
    missing = [s for s in manifest.index.segments if not index_store.has_segment(s.id)]
    files, size = download_segments(objects, index_store, missing, progress)
    path = index_store.save_manifest(manifest.index)
    index = index_store.load(
        path,
        model_id=model_id,
        chunker_version=chunker_version,
        verified={s.id for s in missing},  # hashed on arrival by download_segments
    )
    result = gate(index)
    if not result.passed:
        raise GateFailedError(generation, result)
    return Staged(manifest, index, path, files, size, result)


def download_segments(
    objects: ObjectStore,
    index_store: IndexStore,
    segments: Sequence[SegmentEntry],
    progress: Progress | None,
) -> tuple[int, int]:
    """Download ``segments`` into staging, verify and adopt each; returns (files, bytes).
    Every staging folder is checked before the first is emptied."""
    for s in segments:
        index_store.staging_folder(s.id)
    folders = {s.id: index_store.staging(s.id) for s in segments}
    jobs = [(s, f) for s in segments for f in s.files]
    jobs.sort(key=lambda job: -job[1].size)

    def fetch(job: tuple[SegmentEntry, FileEntry]) -> None:
        segment, f = job
        name = f.path.rsplit("/", 1)[1]
        objects.download(blob_key(f.sha256), folders[segment.id] / name, on_progress=progress)

    in_parallel(fetch, jobs, "snapshot-down")
    for s in segments:
        try:
            index_store.adopt_segment(s, folders[s.id])
        except IndexMismatchError as exc:
            raise ChecksumMismatch(f"{objects.describe()}: {exc}; refused") from None
    return len(jobs), sum(f.size for _, f in jobs)


def _check_paths(index_store: IndexStore, manifest: SnapshotManifest) -> None:
    """Every place in the store ``manifest`` leads to lies inside it, no link on the way;
    checked before anything is written, and a refusal names the manifest's field."""
    index_store.inside("generations")
    for i, s in enumerate(manifest.index.segments):
        field = f"manifest.index.segments[{i}].id"
        try:
            index_store.staging_folder(s.id)
            index_store.inside(f"segments/{s.id}")
            for j, f in enumerate(s.files):
                field = f"manifest.index.segments[{i}].files[{j}].path"
                index_store.file(f)
        except UnsafePathError as exc:
            raise UnsafePathError(str(exc), field) from None


def restore_live(
    live: LiveIndex,
    objects: ObjectStore,
    *,
    region: str,
    generation: int | None,
    model_id: str,
    chunker_version: str,
    gate: Gate,
    now: Callable[[], datetime],
    progress: Progress | None = None,
) -> Staged:
    """Stage ``generation`` (the bucket's latest by default) and, if it passes, swap it in as
    ``live``'s index and record it as the region's active generation. One restore at a time:
    it holds the index's write lock, so no document is added meanwhile."""
    store = live.store
    if store is None:
        raise FatalError("this runtime keeps no index store; nothing can be restored into it")
    chosen = generation if generation is not None else latest_generation(objects)
    if chosen is None:
        raise SnapshotNotFoundError(f"{objects.describe()} holds no snapshot yet")
    with live.write_lock:
        staged = stage(
            objects,
            store,
            chosen,
            model_id=model_id,
            chunker_version=chunker_version,
            gate=gate,
            progress=progress,
        )
        live.install(staged.index, staged.path)
    marker = ActiveMarker(region, chosen, staged.manifest.created_at, now())
    objects.put(active_key(region), marker.to_bytes())
    return staged


def live_restorer(
    live: LiveIndex,
    objects: ObjectStore,
    *,
    region: str,
    model_id: str,
    chunker_version: str,
    gate: Gate,
    now: Callable[[], datetime],
) -> Restorer:
    """``restore_live`` for one runtime, with everything but the generation bound."""

    def restore(generation: int | None) -> Staged:
        return restore_live(
            live,
            objects,
            region=region,
            generation=generation,
            model_id=model_id,
            chunker_version=chunker_version,
            gate=gate,
            now=now,
        )

    return restore
