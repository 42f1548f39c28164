"""``switchyard snapshot publish``: the current index generation into the region's bucket.

Files first (only those the bucket lacks, in parallel; each with its sha256 checksum), then the
manifest under the next generation number with create-only semantics, then ``latest`` moved
by compare-and-set. Two publishers racing: one creates the manifest and moves the pointer, the
other sees a precondition fail, reads the pointer again and retries on top of it (its files are
already there, so a retry costs two small writes). Publishing an index the bucket's latest
generation already holds changes nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from switchyard.dialog.store import FileEntry, IndexStore
from switchyard.errors import ConflictError
from switchyard.ports.objects import ObjectStore, PreconditionFailed
from switchyard.snapshots.layout import (
    LATEST,
    Pointer,
    SnapshotManifest,
    blob_key,
    in_parallel,
    manifest_key,
    missing_blobs,
    read_pointer,
)

Progress = Callable[[int], None]
MAX_ATTEMPTS = 5


@dataclass(frozen=True, slots=True)
class PublishResult:
    generation: int
    files: int  # files in the snapshot
    uploaded_files: int
    uploaded_bytes: int
    total_bytes: int
    unchanged: bool  # the bucket's latest generation already held this index
    attempts: int


def publish(
    index_store: IndexStore,
    objects: ObjectStore,
    *,
    region: str,
    now: Callable[[], datetime],
    progress: Progress | None = None,
) -> PublishResult:
    """Publish the store's current generation; returns what was written."""
    index = index_store.read_manifest()
    uploaded, uploaded_bytes = upload_missing(objects, index_store, index.files, progress)
    floor = 0
    for attempt in range(1, MAX_ATTEMPTS + 1):
        latest, etag = read_pointer(objects)
        total = sum(f.size for f in index.files)
        if latest is not None and latest.content_digest == index.content_digest:
            return PublishResult(
                latest.generation, len(index.files), uploaded, uploaded_bytes, total, True, attempt
            )
        generation = max(latest.generation if latest else 0, floor) + 1
        manifest = SnapshotManifest(generation, region, now(), index)
        try:
            objects.put(manifest_key(generation), manifest.to_bytes(), if_none_match=True)
        except PreconditionFailed:
            floor = generation  # another publisher took this number; go above it
            continue
        pointer = Pointer(generation, index.content_digest, region, manifest.created_at)
        try:
            objects.put(LATEST, pointer.to_bytes(), if_match=etag, if_none_match=etag is None)
        except PreconditionFailed:
            floor = generation  # the pointer moved under us; our manifest stays unreferenced
            continue
        return PublishResult(
            generation, len(index.files), uploaded, uploaded_bytes, total, False, attempt
        )
    raise ConflictError(
        f"{objects.describe()}: the latest pointer kept moving; gave up after "
        f"{MAX_ATTEMPTS} attempts",
        code="snapshot_publish_contended",
    )


def upload_missing(
    objects: ObjectStore,
    index_store: IndexStore,
    files: Sequence[FileEntry],
    progress: Progress | None,
) -> tuple[int, int]:
    """Upload each file of ``files`` (in ``index_store``) that the bucket lacks; returns
    (files uploaded, bytes uploaded). Files are deduplicated by digest; every path is checked
    to lie inside the store before the first upload (a link planted there is refused)."""
    paths = {f.path: index_store.file(f) for f in files}
    missing = missing_blobs(objects, files)

    def upload(f: FileEntry) -> None:
        objects.upload(blob_key(f.sha256), paths[f.path], sha256=f.sha256, on_progress=progress)

    in_parallel(upload, missing, "snapshot-up")
    return len(missing), sum(f.size for f in missing)
