"""``switchyard snapshot replicate A B``: a generation from one region's bucket to another's.

Blobs the target lacks are copied server-side when both buckets live on one endpoint, streamed
part by part otherwise; either way the bytes that arrived are hashed and compared with the
manifest before anything refers to them (a mismatch deletes the copy and stops). Then the
manifest, then the target's ``latest`` moves forward (never back).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from switchyard.dialog.store import FileEntry
from switchyard.ports.objects import (
    ChecksumMismatch,
    ObjectNotFound,
    ObjectStore,
    PreconditionFailed,
)
from switchyard.snapshots.layout import (
    LATEST,
    Pointer,
    SnapshotError,
    SnapshotManifest,
    SnapshotNotFoundError,
    blob_key,
    manifest_key,
    missing_blobs,
    read_manifest,
    read_pointer,
)

Progress = Callable[[int], None]
PART_BYTES = 16 << 20
WINDOW = 4  # parts in flight when streaming


@dataclass(frozen=True, slots=True)
class ReplicateResult:
    generation: int | None  # None: the source has published nothing
    copied_files: int
    copied_bytes: int
    server_side: int  # of the copied files, how many by server-side copy
    pointer_moved: bool


def replicate(
    source: ObjectStore,
    target: ObjectStore,
    *,
    generation: int | None = None,
    progress: Progress | None = None,
) -> ReplicateResult:
    """Copy ``generation`` (the source's latest by default) into ``target``, verified."""
    if generation is None:
        latest, _ = read_pointer(source)
        if latest is None:
            return ReplicateResult(None, 0, 0, 0, False)
        generation = latest.generation
    manifest = read_manifest(source, generation)
    _check_not_diverged(target, manifest)
    copied = copied_bytes = server_side = 0
    for f in missing_blobs(target, manifest.files):
        server_side += copy_blob(source, target, f, progress)
        copied += 1
        copied_bytes += f.size
    try:
        target.put(manifest_key(generation), manifest.to_bytes(), if_none_match=True)
    except PreconditionFailed:
        _check_not_diverged(target, manifest)  # written meanwhile by another replicator
    moved = advance_pointer(target, manifest)
    return ReplicateResult(generation, copied, copied_bytes, server_side, moved)


def copy_blob(
    source: ObjectStore, target: ObjectStore, f: FileEntry, progress: Progress | None
) -> bool:
    """Copy one blob and verify what arrived; True when the copy was server-side."""
    key = blob_key(f.sha256)
    if target.copy_from(source, key, key):
        digest = _digest_of(target, key, f.size)
        if digest != f.sha256:
            target.delete([key])
            raise _mismatch(target, f, digest)
        if progress is not None:
            progress(f.size)
        return True
    _stream(source, target, f, progress)
    return False


def _mismatch(target: ObjectStore, f: FileEntry, digest: str) -> ChecksumMismatch:
    return ChecksumMismatch(
        f"{f.path}: bytes on their way to {target.describe()} have sha256 {digest[:16]}…, "
        f"the manifest says {f.sha256[:16]}…; refused"
    )


def advance_pointer(target: ObjectStore, manifest: SnapshotManifest) -> bool:
    """Move ``target``'s latest to ``manifest`` unless it already names that or a newer one."""
    for _ in range(5):
        latest, etag = read_pointer(target)
        if latest is not None and latest.generation >= manifest.generation:
            return False
        pointer = Pointer(
            manifest.generation,
            manifest.index.content_digest,
            manifest.source_region,
            manifest.created_at,
        )
        try:
            target.put(LATEST, pointer.to_bytes(), if_match=etag, if_none_match=etag is None)
            return True
        except PreconditionFailed:
            continue
    raise SnapshotError(f"{target.describe()}: latest pointer kept moving while replicating")


def _check_not_diverged(target: ObjectStore, manifest: SnapshotManifest) -> None:
    try:
        there = read_manifest(target, manifest.generation)
    except SnapshotNotFoundError:
        return
    if there.index.content_digest != manifest.index.content_digest:
        raise SnapshotError(
            f"{target.describe()} already holds a different generation {manifest.generation} "
            f"(published by {there.source_region} at {there.created_at:%Y-%m-%d %H:%M:%S}); "
            "the regions' histories diverged: publish afresh from the primary"
        )


def _digest_of(store: ObjectStore, key: str, size: int) -> str:
    digest = hashlib.sha256()
    for start in range(0, size, PART_BYTES):
        digest.update(store.read_range(key, start, min(PART_BYTES, size - start)))
    return digest.hexdigest()


def _stream(
    source: ObjectStore, target: ObjectStore, f: FileEntry, progress: Progress | None
) -> None:
    """Copy through this process part by part (no temporary file), hashing in order; bytes
    that do not match ``f`` never become visible at the target."""
    key, size = blob_key(f.sha256), f.size
    digest = hashlib.sha256()
    ranges = [(start, min(PART_BYTES, size - start)) for start in range(0, size, PART_BYTES)]
    if len(ranges) <= 1:
        try:
            data = source.read_range(key, 0, size) if size else b""
        except ObjectNotFound:
            raise SnapshotError(f"{source.describe()} lacks {key}") from None
        digest.update(data)
        if digest.hexdigest() != f.sha256:
            raise _mismatch(target, f, digest.hexdigest())
        target.put(key, data)
        if progress is not None:
            progress(size)
        return
    upload = target.start_multipart(key)
    try:
        with ThreadPoolExecutor(WINDOW, thread_name_prefix="snapshot-copy") as pool:
            for first in range(0, len(ranges), WINDOW):
                window = ranges[first : first + WINDOW]
                parts = list(pool.map(lambda r: source.read_range(key, *r), window))
                for part in parts:
                    digest.update(part)
                numbered = list(enumerate(parts, start=first + 1))
                list(pool.map(lambda p: upload.put_part(p[0], p[1]), numbered))
                if progress is not None:
                    progress(sum(len(p) for p in parts))
        if digest.hexdigest() != f.sha256:
            raise _mismatch(target, f, digest.hexdigest())
        upload.complete()
    except BaseException:
        upload.abort()
        raise
