"""Segments: the immutable pieces an index generation is made of (the Lucene model).

A segment holds some documents' chunks, their vectors, an HNSW graph over those vectors and the
BM25 term counts of each chunk. It never changes once built. A generation is a list of segments
plus, per segment, the documents deleted from it since: replacing a document writes a new small
segment and marks the old copy deleted, so a generation that changed a little differs from the
previous one by a little (which is what makes snapshots incremental).

Segments are merged when a generation would have too many, or when most of a segment is
deleted (``plan_merge``, pure). Merging copies vectors and term counts and rebuilds only the
HNSW graph: nothing is embedded or tokenised again.

A segment's id is the sha256 of its chunk store and vectors, so the same content has the same
id wherever and whenever it was built.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from switchyard.dialog.embedding import Vectors
from switchyard.dialog.model import Chunk

HNSW_NEIGHBOURS = 32
HNSW_EF_CONSTRUCTION = 80
# The default efSearch (16) found the exact top 5 only ~76 % of the time over 10k vectors;
# 128 costs well under a millisecond and makes the approximate search near exact.
HNSW_EF_SEARCH = 128

# More segments than this in one generation and the smallest are merged down to half as many.
MAX_SEGMENTS = 8
# A segment with more than this share of its rows deleted is rewritten.
MAX_DELETED_SHARE = 0.5

Ids = npt.NDArray[np.int64]


@dataclass(frozen=True, slots=True)
class DocumentInfo:
    """What the index remembers of a document (its text lives in the chunks)."""

    doc_id: str
    title: str
    media_type: str
    sha256: str
    chunks: int


@dataclass(frozen=True, eq=False)
class TermCounts:
    """BM25 input for a segment's chunks: a CSR matrix of term counts (row = chunk) over the
    segment's own vocabulary. Scores are computed per generation (``bm25.py``) because the
    document frequencies depend on every live segment."""

    vocabulary: tuple[str, ...]
    indptr: Ids  # rows + 1 offsets into indices/counts
    indices: Ids  # column = position in vocabulary
    counts: npt.NDArray[np.int32]

    @staticmethod
    def of(token_lists: Sequence[Sequence[str]]) -> TermCounts:
        vocab: dict[str, int] = {}
        indptr = [0]
        indices: list[int] = []
        counts: list[int] = []
        for tokens in token_lists:
            row: dict[int, int] = {}
            for token in tokens:
                col = vocab.setdefault(token, len(vocab))
                row[col] = row.get(col, 0) + 1
            for col in sorted(row):
                indices.append(col)
                counts.append(row[col])
            indptr.append(len(indices))
        return TermCounts(
            tuple(vocab),
            np.asarray(indptr, dtype=np.int64),
            np.asarray(indices, dtype=np.int64),
            np.asarray(counts, dtype=np.int32),
        )

    @property
    def rows(self) -> int:
        return len(self.indptr) - 1

    def take(self, rows: Sequence[int]) -> list[list[str]]:
        """The token multisets of ``rows`` (for merging into another segment)."""
        out = []
        for r in rows:
            lo, hi = int(self.indptr[r]), int(self.indptr[r + 1])
            out.append(
                [
                    self.vocabulary[int(col)]
                    for col, n in zip(self.indices[lo:hi], self.counts[lo:hi], strict=True)
                    for _ in range(int(n))
                ]
            )
        return out


@dataclass(frozen=True, eq=False)
class Segment:
    id: str
    documents: Mapping[str, DocumentInfo]
    chunks: tuple[Chunk, ...]
    vectors: Vectors
    hnsw: Any
    terms: TermCounts

    def __repr__(self) -> str:
        return (
            f"Segment({self.id[:12]}, documents={len(self.documents)}, chunks={len(self.chunks)})"
        )

    def rows_of(self, doc_ids: frozenset[str]) -> list[int]:
        return [row for row, c in enumerate(self.chunks) if c.doc_id in doc_ids]


def chunk_lines(chunks: Sequence[Chunk]) -> bytes:
    """The chunk store file: one JSON object per chunk, in row order."""
    return b"".join(
        (json.dumps(asdict(c), ensure_ascii=False) + "\n").encode("utf-8") for c in chunks
    )


def segment_id(chunks: Sequence[Chunk], vectors: Vectors) -> str:
    digest = hashlib.sha256(chunk_lines(chunks))
    digest.update(np.ascontiguousarray(vectors, dtype=np.float32).tobytes())
    return digest.hexdigest()


def build_segment(
    documents: Sequence[DocumentInfo],
    chunks: Sequence[Chunk],
    vectors: Vectors,
    terms: TermCounts,
) -> Segment:
    """A segment of ``documents`` whose chunks (in row order) have ``vectors`` and ``terms``."""
    if not (len(chunks) == vectors.shape[0] == terms.rows):
        raise ValueError(f"{len(chunks)} chunks, {vectors.shape[0]} vectors, {terms.rows} rows")
    return Segment(
        segment_id(chunks, vectors),
        {d.doc_id: d for d in documents},
        tuple(chunks),
        vectors,
        build_hnsw(vectors),
        terms,
    )


def merge(segments: Sequence[Segment], deleted: Mapping[str, frozenset[str]]) -> Segment:
    """One segment holding the live rows of ``segments`` (deleted documents left out)."""
    documents: list[DocumentInfo] = []
    chunks: list[Chunk] = []
    vectors: list[Vectors] = []
    tokens: list[list[str]] = []
    for seg in segments:
        gone = deleted.get(seg.id, frozenset())
        live = [row for row, c in enumerate(seg.chunks) if c.doc_id not in gone]
        documents += [d for doc_id, d in seg.documents.items() if doc_id not in gone]
        chunks += [seg.chunks[r] for r in live]
        vectors.append(seg.vectors[live])
        tokens += seg.terms.take(live)
    dimension = segments[0].vectors.shape[1]
    stacked = np.concatenate(vectors) if vectors else np.zeros((0, dimension), np.float32)
    return build_segment(documents, chunks, stacked, TermCounts.of(tokens))


def plan_merge(sizes: Sequence[tuple[int, int]]) -> list[int]:
    """Which segments to merge, given each one's (rows, deleted rows); [] for none.

    A segment with no live row is dropped (it is listed: merging nothing removes it); one mostly
    deleted is rewritten; when more than ``MAX_SEGMENTS`` would remain, the smallest are merged
    so that half as many remain. Each row is thus rewritten a logarithmic number of times.
    """
    live = [rows - dead for rows, dead in sizes]
    chosen = {
        i
        for i, (rows, dead) in enumerate(sizes)
        if rows == 0 or live[i] == 0 or dead > MAX_DELETED_SHARE * rows
    }
    remaining = len(sizes) - len(chosen) + (1 if chosen else 0)
    if remaining > MAX_SEGMENTS:
        others = sorted((i for i in range(len(sizes)) if i not in chosen), key=lambda i: live[i])
        excess = remaining - MAX_SEGMENTS // 2 + (0 if chosen else 1)
        chosen.update(others[:excess])
    return sorted(chosen)


def build_hnsw(vectors: Vectors) -> Any:
    import faiss

    hnsw = faiss.IndexHNSWFlat(vectors.shape[1], HNSW_NEIGHBOURS, faiss.METRIC_INNER_PRODUCT)
    hnsw.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
    hnsw.hnsw.efSearch = HNSW_EF_SEARCH
    if len(vectors):
        hnsw.add(vectors)
    return hnsw


class VectorSearch:
    """Nearest neighbours of one segment's live rows (deleted rows are skipped by FAISS)."""

    def __init__(self, segment: Segment, dead_rows: Sequence[int]) -> None:
        import faiss

        self._hnsw = segment.hnsw
        self.live = len(segment.chunks) - len(dead_rows)
        self._params = faiss.SearchParametersHNSW()  # type: ignore[attr-defined]  # stubs lag
        self._params.efSearch = HNSW_EF_SEARCH
        if dead_rows:
            # FAISS keeps raw pointers: hold the selectors as long as the parameters.
            self._batch = faiss.IDSelectorBatch(np.asarray(dead_rows, dtype=np.int64))
            self._not = faiss.IDSelectorNot(self._batch)
            self._params.sel = self._not

    def search(self, query: Vectors, k: int) -> list[tuple[int, float]]:
        if self.live == 0:
            return []
        scores, rows = self._hnsw.search(
            query.reshape(1, -1), min(k, self.live), params=self._params
        )
        return [(int(r), float(s)) for r, s in zip(rows[0], scores[0], strict=True) if r >= 0]


def term_vocabulary_bytes(vocabulary: Sequence[str]) -> npt.NDArray[np.uint8]:
    """The vocabulary as one newline-separated UTF-8 array (no pickling on load)."""
    return np.frombuffer("\n".join(vocabulary).encode("utf-8"), dtype=np.uint8)


def vocabulary_from_bytes(raw: npt.NDArray[np.uint8]) -> tuple[str, ...]:
    text = raw.tobytes().decode("utf-8")
    return tuple(text.split("\n")) if text else ()
