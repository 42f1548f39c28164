"""Retention: keep the last N snapshot generations and every generation a region still uses;
delete the other manifests, then the blobs no kept manifest lists.

Safety: manifests go first (a reader following ``latest`` or an active marker never meets a
manifest whose blobs are gone), and a blob younger than the grace period is never deleted,
because it may belong to a publish in progress whose manifest is not written yet.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from switchyard.ports.objects import ObjectStore
from switchyard.snapshots.layout import (
    generations,
    manifest_key,
    read_active,
    read_manifest,
    read_pointer,
)

BLOB_PREFIX = "blobs/sha256/"
DEFAULT_GRACE = timedelta(hours=1)


@dataclass(frozen=True, slots=True)
class RetentionResult:
    kept: tuple[int, ...]
    deleted_generations: tuple[int, ...]
    deleted_blobs: int
    deleted_bytes: int


def doomed_generations(existing: Iterable[int], keep_last: int, in_use: Iterable[int]) -> list[int]:
    """The generations to delete: all but the newest ``keep_last`` and those ``in_use``."""
    ordered = sorted(set(existing))
    newest = set(ordered[-keep_last:]) if keep_last > 0 else set()
    return [g for g in ordered if g not in newest and g not in set(in_use)]


def prune(
    objects: ObjectStore,
    *,
    keep_last: int,
    regions: Sequence[str],
    now: datetime,
    grace: timedelta = DEFAULT_GRACE,
) -> RetentionResult:
    if keep_last < 1:
        raise ValueError("keep_last must be at least 1")
    existing = generations(objects)
    latest, _ = read_pointer(objects)
    in_use = {m.generation for r in regions if (m := read_active(objects, r)) is not None}
    if latest is not None:
        in_use.add(latest.generation)
    doomed = doomed_generations(existing, keep_last, in_use)
    kept = [g for g in existing if g not in doomed]
    referenced = {f.sha256 for g in kept for f in read_manifest(objects, g).files}
    objects.delete([manifest_key(g) for g in doomed])
    blobs = [
        info
        for info in objects.list(BLOB_PREFIX)
        if info.key.removeprefix(BLOB_PREFIX) not in referenced
        and now - info.last_modified >= grace
    ]
    objects.delete([b.key for b in blobs])
    return RetentionResult(tuple(kept), tuple(doomed), len(blobs), sum(b.size for b in blobs))
