"""An index on disk: segment folders shared by generations, one manifest per generation, and a
``current`` link naming the live manifest.

Layout under the store's root::

    segments/<id>/documents.json     the segment's documents
                  chunks.jsonl       its chunk store
                  vectors.npy        raw vectors (for merges and incremental rebuilds)
                  hnsw.faiss         HNSW graph over the vectors
                  terms.npz          BM25 term counts (CSR) and vocabulary
    generations/00000007-<digest>.json   a manifest: generation, model id, chunker version,
                                          counts, and per segment its deleted documents and
                                          every file's path, size and sha256
    current -> generations/00000007-<digest>.json

A segment is written into a temporary folder and renamed into place; a manifest likewise; then
``current`` is replaced by an atomic rename, so a crash leaves either the old or the new
generation live and never a half-written one. Segments are shared: saving a generation writes
only the segments the store does not have. Loading verifies every file against the manifest.
The manifest format is also the body of a snapshot (``switchyard.snapshots``).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from switchyard.dialog.index import IndexInfo, SearchIndex
from switchyard.dialog.model import Chunk
from switchyard.dialog.segments import (
    HNSW_EF_SEARCH,
    DocumentInfo,
    Segment,
    TermCounts,
    chunk_lines,
    term_vocabulary_bytes,
    vocabulary_from_bytes,
)
from switchyard.errors import FatalError

FORMAT_VERSION = 2
SEGMENT_FILES = ("documents.json", "chunks.jsonl", "vectors.npy", "hnsw.faiss", "terms.npz")


class IndexMismatchError(FatalError):
    """The index on disk was built by another model or chunker, or its files are damaged."""

    code = "index_mismatch"


@dataclass(frozen=True, slots=True)
class FileEntry:
    path: str  # relative to the store root: segments/<id>/<name>
    size: int
    sha256: str


@dataclass(frozen=True, slots=True)
class SegmentEntry:
    id: str
    deleted: tuple[str, ...]  # document ids, sorted
    files: tuple[FileEntry, ...]


@dataclass(frozen=True, slots=True)
class IndexManifest:
    info: IndexInfo
    segments: tuple[SegmentEntry, ...]

    @property
    def files(self) -> tuple[FileEntry, ...]:
        return tuple(f for s in self.segments for f in s.files)

    @property
    def content_digest(self) -> str:
        """Identity of what the index holds (not when it was built): equal digests, equal
        search results."""
        body = {
            "model_id": self.info.model_id,
            "chunker_version": self.info.chunker_version,
            "segments": [[s.id, list(s.deleted)] for s in self.segments],
        }
        return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()

    def to_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT_VERSION,
            **asdict(self.info),
            "segments": [
                {"id": s.id, "deleted": list(s.deleted), "files": [asdict(f) for f in s.files]}
                for s in self.segments
            ],
        }

    @staticmethod
    def from_json(raw: Any, where: str) -> IndexManifest:
        """Parse a manifest; IndexMismatchError names ``where`` and what is wrong."""
        try:
            if raw.get("format") != FORMAT_VERSION:
                raise IndexMismatchError(
                    f"{where}: manifest format {raw.get('format')!r}, expected {FORMAT_VERSION}"
                )
            info = IndexInfo(**{k: raw[k] for k in IndexInfo.__dataclass_fields__})
            segments = tuple(
                SegmentEntry(
                    str(s["id"]),
                    tuple(sorted(str(d) for d in s["deleted"])),
                    tuple(
                        FileEntry(str(f["path"]), int(f["size"]), str(f["sha256"]))
                        for f in s["files"]
                    ),
                )
                for s in raw["segments"]
            )
        except (AttributeError, KeyError, TypeError, ValueError) as exc:
            raise IndexMismatchError(f"{where}: not a valid index manifest ({exc})") from None
        for s in segments:
            if sorted(f.path for f in s.files) != sorted(
                segment_path(s.id, n) for n in SEGMENT_FILES
            ):
                raise IndexMismatchError(f"{where}: segment {s.id[:12]} does not list its files")
        return IndexManifest(info, segments)

    def check_compatible(self, *, model_id: str, chunker_version: str) -> None:
        if self.info.model_id != model_id:
            raise IndexMismatchError(
                f"index built with {self.info.model_id!r}, this runtime uses {model_id!r}"
            )
        if self.info.chunker_version != chunker_version:
            raise IndexMismatchError(
                f"index chunked by {self.info.chunker_version!r}, "
                f"this runtime uses {chunker_version!r}"
            )


def segment_path(segment_id: str, name: str) -> str:
    return f"segments/{segment_id}/{name}"


class IndexStore:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.segments = root / "segments"
        self.generations = root / "generations"
        self.current_link = root / "current"

    def __repr__(self) -> str:
        return f"IndexStore({self.root})"

    def current_path(self) -> Path | None:
        """The live generation's manifest, None when nothing was saved yet."""
        if not self.current_link.is_symlink():
            return None
        return self.current_link.resolve()

    # -- writing --------------------------------------------------------------------------------

    def save(self, index: SearchIndex) -> Path:
        """Write ``index`` (the segments the store lacks, then its manifest) and make it current;
        returns its manifest's path."""
        entries = [
            SegmentEntry(s.id, tuple(sorted(index.deleted[s.id])), self._write_segment(s))
            for s in index.segments
        ]
        path = self.save_manifest(IndexManifest(index.info, tuple(entries)))
        self.make_current(path)
        return path

    def save_manifest(self, manifest: IndexManifest) -> Path:
        """Write ``manifest`` as a generation (not yet current); its segments must be present."""
        self.generations.mkdir(parents=True, exist_ok=True)
        name = f"{manifest.info.generation:08d}-{manifest.content_digest[:12]}.json"
        path = self.generations / name
        _write_atomically(path, json.dumps(manifest.to_json(), indent=1, sort_keys=True).encode())
        return path

    def make_current(self, manifest_path: Path) -> None:
        tmp = self.root / f".current.tmp-{os.getpid()}"
        tmp.unlink(missing_ok=True)
        tmp.symlink_to(manifest_path.relative_to(self.root))
        tmp.replace(self.current_link)

    def has_segment(self, segment_id: str) -> bool:
        return (self.segments / segment_id).is_dir()

    def staging(self, name: str) -> Path:
        """An empty folder under the store for files on their way in (same file system, so
        adopting them is a rename)."""
        folder = self.root / "staging" / name
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        return folder

    def adopt_segment(self, entry: SegmentEntry, folder: Path) -> None:
        """Move a segment's files from ``folder`` (named by file name) into the store after
        verifying each against ``entry``; IndexMismatchError names the damaged files."""
        damaged = _damaged(folder, {f.path.rsplit("/", 1)[1]: f for f in entry.files})
        if damaged:
            raise IndexMismatchError(
                f"segment {entry.id[:12]}: files do not match the manifest: {', '.join(damaged)}"
            )
        self.segments.mkdir(parents=True, exist_ok=True)
        if not self.has_segment(entry.id):
            folder.rename(self.segments / entry.id)

    def _write_segment(self, segment: Segment) -> tuple[FileEntry, ...]:
        final = self.segments / segment.id
        if not final.is_dir():
            import faiss

            self.segments.mkdir(parents=True, exist_ok=True)
            tmp = self.segments / f".{segment.id}.tmp-{os.getpid()}"
            shutil.rmtree(tmp, ignore_errors=True)
            tmp.mkdir()
            (tmp / "documents.json").write_text(
                json.dumps([asdict(d) for d in segment.documents.values()], indent=1)
            )
            (tmp / "chunks.jsonl").write_bytes(chunk_lines(segment.chunks))
            np.save(tmp / "vectors.npy", segment.vectors, allow_pickle=False)
            faiss.write_index(segment.hnsw, str(tmp / "hnsw.faiss"))
            terms = segment.terms
            np.savez(
                tmp / "terms.npz",
                vocabulary=term_vocabulary_bytes(terms.vocabulary),
                indptr=terms.indptr,
                indices=terms.indices,
                counts=terms.counts,
            )
            tmp.rename(final)
        return tuple(
            FileEntry(
                segment_path(segment.id, n), (final / n).stat().st_size, file_digest(final / n)
            )
            for n in SEGMENT_FILES
        )

    # -- reading --------------------------------------------------------------------------------

    def read_manifest(self, path: Path | None = None) -> IndexManifest:
        folder = path or self.current_path()
        if folder is None:
            raise FileNotFoundError(f"no index saved under {self.root}")
        try:
            raw = json.loads(folder.read_text())
        except (OSError, ValueError) as exc:
            raise IndexMismatchError(f"{folder.name}: unreadable manifest ({exc})") from None
        return IndexManifest.from_json(raw, folder.name)

    def load(
        self,
        path: Path | None = None,
        *,
        model_id: str,
        chunker_version: str,
        verified: Collection[str] = (),
    ) -> SearchIndex:
        """Load a generation (the current one by default), verifying model, chunker and the
        files of every segment but those ``verified`` already (just adopted, say)."""
        manifest = self.read_manifest(path)
        manifest.check_compatible(model_id=model_id, chunker_version=chunker_version)
        to_check = [f for s in manifest.segments if s.id not in verified for f in s.files]
        damaged = _damaged(self.root, {f.path: f for f in to_check})
        if damaged:
            raise IndexMismatchError(f"index files do not match the manifest: {', '.join(damaged)}")
        segments = [self._read_segment(self.segments / s.id, s.id) for s in manifest.segments]
        deleted = {s.id: frozenset(s.deleted) for s in manifest.segments}
        return SearchIndex(manifest.info, segments, deleted)

    def _read_segment(self, folder: Path, segment_id: str) -> Segment:
        import faiss

        with (folder / "chunks.jsonl").open(encoding="utf-8") as f:
            chunks = tuple(Chunk(**json.loads(line)) for line in f)
        documents = {
            d["doc_id"]: DocumentInfo(**d)
            for d in json.loads((folder / "documents.json").read_text())
        }
        vectors = np.load(folder / "vectors.npy", allow_pickle=False)
        hnsw = faiss.read_index(str(folder / "hnsw.faiss"))
        hnsw.hnsw.efSearch = HNSW_EF_SEARCH  # type: ignore[attr-defined]  # not in the file
        with np.load(folder / "terms.npz", allow_pickle=False) as npz:
            terms = TermCounts(
                vocabulary_from_bytes(npz["vocabulary"]),
                npz["indptr"],
                npz["indices"],
                npz["counts"],
            )
        return Segment(segment_id, documents, chunks, vectors, hnsw, terms)

    # -- retention ------------------------------------------------------------------------------

    def manifests(self) -> Iterator[Path]:
        """Every generation's manifest, oldest first."""
        if self.generations.is_dir():
            yield from sorted(self.generations.glob("*.json"))

    def prune(self, keep: int, *, also_keep: Sequence[Path] = ()) -> list[str]:
        """Delete all but the newest ``keep`` manifests (never the current one nor
        ``also_keep``), then every segment no remaining manifest lists; returns what went."""
        current = self.current_path()
        manifests = list(self.manifests())
        protected = {p.resolve() for p in also_keep} | ({current} if current else set())
        removed = []
        for path in manifests[: max(0, len(manifests) - keep)]:
            if path.resolve() not in protected:
                path.unlink()
                removed.append(path.name)
        used = {s.id for p in self.manifests() for s in self.read_manifest(p).segments}
        for folder in sorted(self.segments.iterdir()) if self.segments.is_dir() else []:
            if folder.is_dir() and folder.name not in used and not folder.name.startswith("."):
                shutil.rmtree(folder)
                removed.append(f"segments/{folder.name}")
        shutil.rmtree(self.root / "staging", ignore_errors=True)
        return removed


def file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _write_atomically(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_bytes(data)
    tmp.replace(path)


def _damaged(folder: Path, files: Mapping[str, FileEntry]) -> list[str]:
    damaged = []
    for name, meta in files.items():
        path = folder / name
        if (
            not path.is_file()
            or path.stat().st_size != meta.size
            or file_digest(path) != meta.sha256
        ):
            damaged.append(name)
    return damaged
