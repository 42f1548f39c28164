"""An index on disk: one folder per generation and a ``current`` link naming the live one.

Layout under the store's root::

    generations/00000007/manifest.json   generation, model id, chunker version, counts, and
                         chunks.jsonl    the size and sha256 of every other file
                         documents.json
                         vectors.npy
                         hnsw.faiss
                         bm25/...
    current -> generations/00000007

A generation is written into a temporary folder and renamed into place, then ``current`` is
replaced by an atomic rename, so a crash leaves either the old or the new generation live and
never a half-written one. Loading verifies every file against the manifest.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Mapping
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from switchyard.dialog.index import HNSW_EF_SEARCH, DocumentInfo, IndexInfo, SearchIndex
from switchyard.dialog.model import Chunk
from switchyard.errors import FatalError

MANIFEST = "manifest.json"
FORMAT_VERSION = 1


class IndexMismatchError(FatalError):
    """The index on disk was built by another model or chunker, or its files are damaged."""

    code = "index_mismatch"


class IndexStore:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.generations = root / "generations"
        self.current_link = root / "current"

    def current_path(self) -> Path | None:
        """The live generation's folder, None when nothing was saved yet."""
        if not self.current_link.is_symlink():
            return None
        return self.current_link.resolve()

    def save(self, index: SearchIndex) -> Path:
        """Write ``index`` as its generation and make it current; returns its folder."""
        import faiss

        self.generations.mkdir(parents=True, exist_ok=True)
        final = self.generations / f"{index.info.generation:08d}"
        staging = self.generations / f".{final.name}.tmp-{os.getpid()}"
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir()
        with (staging / "chunks.jsonl").open("w", encoding="utf-8") as f:
            for chunk in index.chunks:
                f.write(json.dumps(asdict(chunk), ensure_ascii=False) + "\n")
        (staging / "documents.json").write_text(
            json.dumps([asdict(d) for d in index.documents.values()], indent=1)
        )
        np.save(staging / "vectors.npy", index.vectors, allow_pickle=False)
        faiss.write_index(index.hnsw, str(staging / "hnsw.faiss"))
        index.bm25.save(str(staging / "bm25"), show_progress=False)
        manifest = {
            "format": FORMAT_VERSION,
            **asdict(index.info),
            "files": _file_table(staging),
        }
        (staging / MANIFEST).write_text(json.dumps(manifest, indent=1, sort_keys=True))
        if final.exists():  # a generation number is reused only by a retried save
            shutil.rmtree(final)
        staging.rename(final)
        self._point_current_at(final)
        return final

    def load(self, path: Path | None = None, *, model_id: str, chunker_version: str) -> SearchIndex:
        """Load a generation (the current one by default), verifying model, chunker, files."""
        import bm25s
        import faiss

        folder = path or self.current_path()
        if folder is None:
            raise FileNotFoundError(f"no index saved under {self.root}")
        manifest = json.loads((folder / MANIFEST).read_text())
        info = IndexInfo(**{k: manifest[k] for k in IndexInfo.__dataclass_fields__})
        if info.model_id != model_id:
            raise IndexMismatchError(
                f"index built with {info.model_id!r}, this runtime uses {model_id!r}"
            )
        if info.chunker_version != chunker_version:
            raise IndexMismatchError(
                f"index chunked by {info.chunker_version!r}, this runtime uses {chunker_version!r}"
            )
        damaged = _verify(folder, manifest["files"])
        if damaged:
            raise IndexMismatchError(f"index files do not match the manifest: {', '.join(damaged)}")
        with (folder / "chunks.jsonl").open(encoding="utf-8") as f:
            chunks = [Chunk(**json.loads(line)) for line in f]
        documents = {
            d["doc_id"]: DocumentInfo(**d)
            for d in json.loads((folder / "documents.json").read_text())
        }
        vectors = np.load(folder / "vectors.npy", allow_pickle=False)
        hnsw = faiss.read_index(str(folder / "hnsw.faiss"))
        hnsw.hnsw.efSearch = HNSW_EF_SEARCH  # type: ignore[attr-defined]  # not in the file
        bm25 = bm25s.BM25.load(str(folder / "bm25"), show_progress=False)
        return SearchIndex(info, documents, chunks, vectors, hnsw, bm25)

    def _point_current_at(self, folder: Path) -> None:
        tmp = self.root / f".current.tmp-{os.getpid()}"
        tmp.unlink(missing_ok=True)
        tmp.symlink_to(folder.relative_to(self.root))
        tmp.replace(self.current_link)


def file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _file_table(folder: Path) -> dict[str, dict[str, Any]]:
    return {
        p.relative_to(folder).as_posix(): {"size": p.stat().st_size, "sha256": file_digest(p)}
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.name != MANIFEST
    }


def _verify(folder: Path, files: Mapping[str, Mapping[str, Any]]) -> list[str]:
    damaged = []
    for name, meta in files.items():
        path = folder / name
        if (
            not path.is_file()
            or path.stat().st_size != meta["size"]
            or file_digest(path) != meta["sha256"]
        ):
            damaged.append(name)
    return damaged
