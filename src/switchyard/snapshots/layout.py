"""Snapshot values and where they live in a bucket; parsed strictly where they are read."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from switchyard.dialog.store import FileEntry, IndexManifest, IndexMismatchError
from switchyard.errors import FatalError, NotFoundError
from switchyard.ports.objects import ObjectNotFound, ObjectStore

SNAPSHOT_FORMAT = 1
LATEST = "latest"
# Files transferred side by side (each large one also moves its parts in parallel).
FILE_CONCURRENCY = 4

T = TypeVar("T")


class SnapshotError(FatalError):
    """A snapshot object is malformed or inconsistent with the bucket."""

    code = "snapshot_invalid"


class SnapshotNotFoundError(NotFoundError):
    """The bucket holds no such snapshot generation (or none at all)."""

    code = "snapshot_not_found"


def blob_key(sha256: str) -> str:
    return f"blobs/sha256/{sha256}"


def manifest_key(generation: int) -> str:
    return f"generations/{generation:010d}.json"


def active_key(region: str) -> str:
    return f"regions/{region}/active.json"


@dataclass(frozen=True, slots=True)
class SnapshotManifest:
    generation: int
    source_region: str
    created_at: datetime
    index: IndexManifest

    @property
    def files(self) -> tuple[FileEntry, ...]:
        return self.index.files

    @property
    def size(self) -> int:
        return sum(f.size for f in self.files)

    def to_bytes(self) -> bytes:
        body = {
            "format": SNAPSHOT_FORMAT,
            "generation": self.generation,
            "source_region": self.source_region,
            "created_at": _rfc3339(self.created_at),
            "model_id": self.index.info.model_id,
            "chunker_version": self.index.info.chunker_version,
            "documents": self.index.info.documents,
            "chunks": self.index.info.chunks,
            "index": self.index.to_json(),
        }
        return json.dumps(body, indent=1, sort_keys=True).encode()

    @staticmethod
    def parse(data: bytes, where: str) -> SnapshotManifest:
        raw = _json(data, where)
        try:
            if raw["format"] != SNAPSHOT_FORMAT:
                raise SnapshotError(f"{where}: snapshot format {raw['format']!r} unknown")
            index = IndexManifest.from_json(raw["index"], where)
            return SnapshotManifest(
                int(raw["generation"]),
                str(raw["source_region"]),
                datetime.fromisoformat(str(raw["created_at"])),
                index,
            )
        except IndexMismatchError as exc:
            raise SnapshotError(str(exc)) from None
        except (KeyError, TypeError, ValueError) as exc:
            raise SnapshotError(f"{where}: not a valid snapshot manifest ({exc})") from None


@dataclass(frozen=True, slots=True)
class Pointer:
    """The ``latest`` object: which generation is newest and what it holds."""

    generation: int
    content_digest: str
    source_region: str
    updated_at: datetime

    def to_bytes(self) -> bytes:
        return json.dumps(
            {
                "generation": self.generation,
                "manifest": manifest_key(self.generation),
                "content_digest": self.content_digest,
                "source_region": self.source_region,
                "updated_at": _rfc3339(self.updated_at),
            },
            sort_keys=True,
        ).encode()

    @staticmethod
    def parse(data: bytes, where: str) -> Pointer:
        raw = _json(data, where)
        try:
            return Pointer(
                int(raw["generation"]),
                str(raw["content_digest"]),
                str(raw["source_region"]),
                datetime.fromisoformat(str(raw["updated_at"])),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise SnapshotError(f"{where}: not a valid pointer ({exc})") from None


@dataclass(frozen=True, slots=True)
class ActiveMarker:
    """Which snapshot generation a region's runtime serves since when."""

    region: str
    generation: int
    created_at: datetime  # when that generation was published
    activated_at: datetime

    def to_bytes(self) -> bytes:
        return json.dumps(
            {
                "region": self.region,
                "generation": self.generation,
                "created_at": _rfc3339(self.created_at),
                "activated_at": _rfc3339(self.activated_at),
            },
            sort_keys=True,
        ).encode()

    @staticmethod
    def parse(data: bytes, where: str) -> ActiveMarker:
        raw = _json(data, where)
        try:
            return ActiveMarker(
                str(raw["region"]),
                int(raw["generation"]),
                datetime.fromisoformat(str(raw["created_at"])),
                datetime.fromisoformat(str(raw["activated_at"])),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise SnapshotError(f"{where}: not a valid active marker ({exc})") from None


def read_pointer(store: ObjectStore) -> tuple[Pointer | None, str | None]:
    """(pointer, its etag for a compare-and-set), or (None, None) when nothing was published."""
    try:
        blob = store.get(LATEST)
    except ObjectNotFound:
        return None, None
    return Pointer.parse(blob.data, f"{store.describe()}/{LATEST}"), blob.etag


def read_manifest(store: ObjectStore, generation: int) -> SnapshotManifest:
    key = manifest_key(generation)
    try:
        blob = store.get(key)
    except ObjectNotFound:
        raise SnapshotNotFoundError(
            f"{store.describe()} has no snapshot generation {generation}"
        ) from None
    manifest = SnapshotManifest.parse(blob.data, f"{store.describe()}/{key}")
    if manifest.generation != generation:
        raise SnapshotError(f"{key} says it is generation {manifest.generation}")
    return manifest


def read_active(store: ObjectStore, region: str) -> ActiveMarker | None:
    try:
        blob = store.get(active_key(region))
    except ObjectNotFound:
        return None
    return ActiveMarker.parse(blob.data, f"{store.describe()}/{active_key(region)}")


def generations(store: ObjectStore) -> list[int]:
    """Every snapshot generation the bucket holds a manifest for, ascending."""
    found = []
    for info in store.list("generations/"):
        stem = info.key.removeprefix("generations/").removesuffix(".json")
        if stem.isdigit():
            found.append(int(stem))
    return sorted(found)


def missing_blobs(store: ObjectStore, files: Iterable[FileEntry]) -> list[FileEntry]:
    """The files (one per digest) whose blob ``store`` lacks, or holds at another size;
    largest first, so a pool working through them stays busy to the end."""
    wanted = {f.sha256: f for f in files}.values()
    missing = []
    for f in wanted:
        found = store.head(blob_key(f.sha256))
        if found is None or found.size != f.size:
            missing.append(f)
    return sorted(missing, key=lambda f: -f.size)


def in_parallel(work: Callable[[T], None], items: Sequence[T], name: str) -> None:
    """``work`` on every item, ``FILE_CONCURRENCY`` at a time; the first failure is raised
    once every started item has finished."""
    with ThreadPoolExecutor(FILE_CONCURRENCY, thread_name_prefix=name) as pool:
        for future in [pool.submit(work, item) for item in items]:
            future.result()


def _json(data: bytes, where: str) -> dict[str, Any]:
    try:
        raw = json.loads(data)
    except ValueError:
        raise SnapshotError(f"{where}: not JSON") from None
    if not isinstance(raw, dict):
        raise SnapshotError(f"{where}: not a JSON object")
    return raw


def _rfc3339(moment: datetime) -> str:
    return moment.isoformat(timespec="seconds").replace("+00:00", "Z")
