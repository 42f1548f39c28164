"""Snapshot values and where they live in a bucket; parsed strictly where they are read.

Everything read from a bucket is hostile until parsed: a manifest, the ``latest`` pointer and
a region's active marker go through ``dialog.manifest``'s reader (strict patterns for
generations, digests, region names and times; no unknown fields), and a refusal is a
``ManifestError`` naming the object and the field (``manifest.index.segments[0].id``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from typing import TypeVar

from switchyard.dialog.manifest import (
    HEX64,
    INDEX_KEYS,
    MAX_GENERATION,
    REGION_NAME,
    Fields,
    FileEntry,
    IndexManifest,
    ManifestError,
    parse_index_manifest,
    parse_json,
)
from switchyard.errors import FatalError, NotFoundError
from switchyard.ports.objects import ObjectNotFound, ObjectStore

SNAPSHOT_FORMAT = 1
LATEST = "latest"
# Files transferred side by side (each large one also moves its parts in parallel).
FILE_CONCURRENCY = 4
_GENERATION_KEY = re.compile(r"generations/([0-9]{10})\.json")
_MANIFEST_KEYS = (
    "format",
    "generation",
    "source_region",
    "created_at",
    "model_id",
    "chunker_version",
    "documents",
    "chunks",
    "index",
)
# Repeated beside the index for people reading the bucket; they must agree with it.
_REPEATED = ("model_id", "chunker_version", "documents", "chunks")

T = TypeVar("T")


class SnapshotError(FatalError):
    """A snapshot object is malformed or inconsistent with the bucket."""

    code = "snapshot_invalid"


class SnapshotNotFoundError(NotFoundError):
    """The bucket holds no such snapshot generation (or none at all)."""

    code = "snapshot_not_found"


def blob_key(sha256: str) -> str:
    if not HEX64.fullmatch(sha256):  # a parsed manifest never gets here with one
        raise ValueError("a blob key needs a sha256 digest (64 lowercase hex digits)")
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
        """The manifest in ``data`` (from ``where``); ``ManifestError`` names the field."""
        m = Fields(parse_json(data, where, "manifest"), where, "manifest", _MANIFEST_KEYS)
        version = m.integer("format", low=0, high=MAX_GENERATION)
        if version != SNAPSHOT_FORMAT:
            raise m.refuse("format", f"snapshot format {version} unknown")
        generation = m.integer("generation", low=1, high=MAX_GENERATION)
        source_region = m.text("source_region", REGION_NAME, "a region name")
        created_at = m.timestamp("created_at")
        index = parse_index_manifest(m.object("index", INDEX_KEYS))
        for name in _REPEATED:
            repeated, indexed = m.value(name), getattr(index.info, name)
            if type(repeated) is not type(indexed) or repeated != indexed:
                raise m.refuse(name, f"differs from manifest.index.{name}")
        return SnapshotManifest(generation, source_region, created_at, index)


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
        keys = ("generation", "manifest", "content_digest", "source_region", "updated_at")
        p = Fields(parse_json(data, where, "latest"), where, "latest", keys)
        generation = p.integer("generation", low=1, high=MAX_GENERATION)
        if p.value("manifest") != manifest_key(generation):
            raise p.refuse("manifest", "must be the key of the generation's manifest")
        return Pointer(
            generation,
            p.text("content_digest", HEX64, "a sha256 digest (64 lowercase hex digits)"),
            p.text("source_region", REGION_NAME, "a region name"),
            p.timestamp("updated_at"),
        )


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
        keys = ("region", "generation", "created_at", "activated_at")
        a = Fields(parse_json(data, where, "active"), where, "active", keys)
        return ActiveMarker(
            a.text("region", REGION_NAME, "a region name"),
            a.integer("generation", low=1, high=MAX_GENERATION),
            a.timestamp("created_at"),
            a.timestamp("activated_at"),
        )


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
    where = f"{store.describe()}/{key}"
    manifest = SnapshotManifest.parse(blob.data, where)
    if manifest.generation != generation:
        raise ManifestError(where, "manifest.generation", f"is not {generation}, its key's")
    return manifest


def read_active(store: ObjectStore, region: str) -> ActiveMarker | None:
    try:
        blob = store.get(active_key(region))
    except ObjectNotFound:
        return None
    where = f"{store.describe()}/{active_key(region)}"
    marker = ActiveMarker.parse(blob.data, where)
    if marker.region != region:
        raise ManifestError(where, "active.region", f"is not {region}, its key's")
    return marker


def generations(store: ObjectStore) -> list[int]:
    """Every snapshot generation the bucket holds a manifest for, ascending."""
    found = []
    for info in store.list("generations/"):
        if matched := _GENERATION_KEY.fullmatch(info.key):
            found.append(int(matched[1]))
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


def _rfc3339(moment: datetime) -> str:
    return moment.isoformat(timespec="seconds").replace("+00:00", "Z")
