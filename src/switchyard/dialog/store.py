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
The manifest format is also the body of a snapshot (``switchyard.snapshots``), so manifests are
parsed as hostile input (``manifest.py``), and every path the store touches is checked to stay
inside it, symbolic links included (``IndexStore.inside``).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import asdict
from pathlib import Path

import numpy as np

from switchyard.dialog.index import SearchIndex
from switchyard.dialog.manifest import (
    MAX_MANIFEST_BYTES,
    SEGMENT_FILES,
    FileEntry,
    IndexManifest,
    IndexMismatchError,
    ManifestError,
    SegmentEntry,
    UnsafePathError,
    parse_json,
    path_problem,
    segment_path,
)
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

__all__ = [
    "SEGMENT_FILES",
    "FileEntry",
    "IndexManifest",
    "IndexMismatchError",
    "IndexStore",
    "ManifestError",
    "SegmentEntry",
    "UnsafePathError",
    "file_digest",
    "segment_path",
]

# A generation's manifest file: generations/<generation, 8+ digits>-<digest prefix>.json
MANIFEST_NAME = re.compile(r"[0-9]{8,10}-[0-9a-f]{12}\.json")


class IndexStore:
    """An index on disk (see the module's docstring). Every path it touches is checked by
    ``inside``: under the root, reached without a symbolic link, so neither a manifest's names
    nor a link planted in ``staging/``, ``segments/`` or ``generations/`` can make it read,
    write or delete anything elsewhere (``UnsafePathError``)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.segments = root / "segments"
        self.generations = root / "generations"
        self.current_link = root / "current"

    def __repr__(self) -> str:
        return f"IndexStore({self.root})"

    def inside(self, relative: str) -> Path:
        """``root/relative``, refused unless ``relative`` is a plain relative path and the
        result resolves to exactly that place (no symbolic link on the way)."""
        problem = path_problem(relative)
        if problem is not None:
            raise UnsafePathError(f"{self.root}: a path in the index store {problem}")
        path = self.root / relative
        if path.resolve() != self.root.resolve() / relative:
            raise UnsafePathError(
                f"{self.root}: {relative} leads outside the index store (a symbolic link on "
                "the way); refused"
            )
        return path

    def current_path(self) -> Path | None:
        """The live generation's manifest, None when nothing was saved yet."""
        if not self.current_link.is_symlink():
            return None
        target = str(self.current_link.readlink())
        name = target.removeprefix("generations/")
        if target != f"generations/{name}" or not MANIFEST_NAME.fullmatch(name):
            raise UnsafePathError(
                f"{self.current_link} does not point at a manifest in generations/; refused"
            )
        return self.inside(target)

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
        self.inside("generations").mkdir(parents=True, exist_ok=True)
        name = f"{manifest.info.generation:08d}-{manifest.content_digest[:12]}.json"
        path = self.inside(f"generations/{name}")
        _write_atomically(path, json.dumps(manifest.to_json(), indent=1, sort_keys=True).encode())
        return path

    def make_current(self, manifest_path: Path) -> None:
        relative = self._manifest_name(manifest_path)
        self.inside(relative)
        tmp = self.inside(f".current.tmp-{os.getpid()}")
        tmp.unlink(missing_ok=True)
        tmp.symlink_to(relative)
        tmp.replace(self.current_link)

    def has_segment(self, segment_id: str) -> bool:
        return self.inside(f"segments/{segment_id}").is_dir()

    def staging_folder(self, name: str) -> Path:
        """Where ``staging`` puts ``name``'s files, checked (nothing is created)."""
        return self.inside(f"staging/{name}")

    def staging(self, name: str) -> Path:
        """An empty folder under the store for files on their way in (same file system, so
        adopting them is a rename)."""
        folder = self.staging_folder(name)
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        return folder

    def adopt_segment(self, entry: SegmentEntry, folder: Path) -> None:
        """Move a segment's files from ``folder`` (named by file name) into the store after
        verifying each against ``entry``; IndexMismatchError names the damaged files."""
        if folder != self.staging_folder(entry.id):
            raise UnsafePathError(f"{folder} is not segment {entry.id[:12]}'s staging folder")
        damaged = _damaged(folder, {f.name: f for f in entry.files})
        if damaged:
            raise IndexMismatchError(
                f"segment {entry.id[:12]}: files do not match the manifest: {', '.join(damaged)}"
            )
        self.inside("segments").mkdir(parents=True, exist_ok=True)
        if not self.has_segment(entry.id):
            folder.rename(self.inside(f"segments/{entry.id}"))

    def _write_segment(self, segment: Segment) -> tuple[FileEntry, ...]:
        final = self.inside(f"segments/{segment.id}")
        if not final.is_dir():
            import faiss

            self.inside("segments").mkdir(parents=True, exist_ok=True)
            tmp = self.inside(f"segments/.{segment.id}.tmp-{os.getpid()}")
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
        """A generation's manifest (the current one by default), parsed as untrusted input:
        ``ManifestError`` names the file and the field."""
        chosen = path or self.current_path()
        if chosen is None:
            raise FileNotFoundError(f"no index saved under {self.root}")
        file = self.inside(self._manifest_name(chosen))
        try:
            with file.open("rb") as f:
                data = f.read(MAX_MANIFEST_BYTES + 1)
        except OSError as exc:
            raise IndexMismatchError(f"{file.name}: unreadable manifest ({exc})") from None
        return IndexManifest.from_json(parse_json(data, file.name, "manifest"), file.name)

    def file(self, entry: FileEntry) -> Path:
        """Where a manifest's file lives in the store, checked."""
        return self.inside(entry.path)

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
        folders = {s.id: self.inside(f"segments/{s.id}") for s in manifest.segments}
        files = {f.path: self.file(f) for f in manifest.files}  # every path checked
        to_check = [f for s in manifest.segments if s.id not in verified for f in s.files]
        damaged = [f.path for f in to_check if not _matches(files[f.path], f)]
        if damaged:
            raise IndexMismatchError(f"index files do not match the manifest: {', '.join(damaged)}")
        segments = [self._read_segment(folders[s.id], s.id) for s in manifest.segments]
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

    def _manifest_name(self, path: Path) -> str:
        """``generations/<name>`` for a manifest path of this store (spelled from the root as
        given or resolved); UnsafePathError if ``path`` is anything else."""
        folder = path.parent
        ours = folder == self.generations or folder.resolve() == self.generations.resolve()
        if not ours or not MANIFEST_NAME.fullmatch(path.name):
            raise UnsafePathError(f"{path} is not a manifest in {self.generations}")
        return f"generations/{path.name}"

    # -- retention ------------------------------------------------------------------------------

    def manifests(self) -> Iterator[Path]:
        """Every generation's manifest, oldest first (links and stray files are not ones)."""
        folder = self.inside("generations")
        if folder.is_dir():
            yield from sorted(
                p
                for p in folder.iterdir()
                if MANIFEST_NAME.fullmatch(p.name) and not p.is_symlink() and p.is_file()
            )

    def prune(self, keep: int, *, also_keep: Sequence[Path] = ()) -> list[str]:
        """Delete all but the newest ``keep`` manifests (never the current one nor
        ``also_keep``), then every segment no remaining manifest lists; returns what went.
        Symbolic links are never followed nor removed: whoever planted one must see it."""
        current = self.current_path()
        manifests = list(self.manifests())
        protected = {p.resolve() for p in also_keep} | ({current.resolve()} if current else set())
        removed = []
        for path in manifests[: max(0, len(manifests) - keep)]:
            if path.resolve() not in protected:
                path.unlink()
                removed.append(path.name)
        used = {s.id for p in self.manifests() for s in self.read_manifest(p).segments}
        segments = self.inside("segments")
        for folder in sorted(segments.iterdir()) if segments.is_dir() else []:
            if (
                not folder.is_symlink()
                and folder.is_dir()
                and folder.name not in used
                and not folder.name.startswith(".")
            ):
                shutil.rmtree(folder)
                removed.append(f"segments/{folder.name}")
        staging = self.root / "staging"
        if not staging.is_symlink():
            shutil.rmtree(staging, ignore_errors=True)
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


def _matches(path: Path, meta: FileEntry) -> bool:
    return (
        not path.is_symlink()
        and path.is_file()
        and path.stat().st_size == meta.size
        and file_digest(path) == meta.sha256
    )


def _damaged(folder: Path, files: Mapping[str, FileEntry]) -> list[str]:
    return [name for name, meta in files.items() if not _matches(folder / name, meta)]
