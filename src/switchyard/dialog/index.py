"""The search index of one region: chunks, their vectors (FAISS HNSW) and BM25 statistics.

A ``SearchIndex`` is immutable once built. Adding or replacing a document builds the next
generation (reusing the vectors of every unchanged chunk, so only new text is embedded) and the
runtime swaps the reference; searches in flight finish on the generation they started with.

On disk a generation is a folder (see ``store.py``) holding a manifest and these files:
``chunks.jsonl``, ``documents.json``, ``vectors.npy`` (raw vectors, for incremental rebuilds),
``hnsw.faiss`` and ``bm25/`` (the sparse BM25 matrix and vocabulary from bm25s).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
import numpy.typing as npt

from switchyard.dialog.chunking import CHUNKER_VERSION, chunk_document, embedding_text
from switchyard.dialog.embedding import Embedder, Vectors
from switchyard.dialog.model import Chunk, Document

HNSW_NEIGHBOURS = 32
HNSW_EF_CONSTRUCTION = 80
# The default efSearch (16) found the exact top 5 only ~76 % of the time over 10k vectors;
# 128 costs well under a millisecond and makes the approximate search near exact.
HNSW_EF_SEARCH = 128

_TOKEN = re.compile(r"(?u)\b\w\w+\b")
_STOPWORDS = frozenset(
    [
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "but",
        "by",
        "can",
        "do",
        "does",
        "for",
        "from",
        "has",
        "have",
        "how",
        "i",
        "if",
        "in",
        "into",
        "is",
        "it",
        "its",
        "me",
        "my",
        "no",
        "not",
        "of",
        "on",
        "or",
        "our",
        "so",
        "such",
        "that",
        "the",
        "their",
        "them",
        "then",
        "there",
        "these",
        "they",
        "this",
        "to",
        "was",
        "we",
        "were",
        "what",
        "when",
        "where",
        "which",
        "who",
        "why",
        "will",
        "with",
        "you",
        "your",
    ]
)


def tokenize(text: str) -> list[str]:
    """BM25 terms: lower-case words of two or more characters, stop words dropped, plural and
    common verb endings folded ("passwords" and "password" match; so do "booked" and "book")."""
    return [_stem(t) for t in _TOKEN.findall(text.lower()) if t not in _STOPWORDS]


def _stem(word: str) -> str:
    if len(word) <= 3 or word.isdigit():
        return word
    for suffix, replacement, min_len in (
        ("ies", "y", 5),
        ("sses", "ss", 5),
        ("ing", "", 6),
        ("ed", "", 5),
        ("es", "e", 5),
        ("s", "", 4),
    ):
        if word.endswith(suffix) and len(word) >= min_len:
            if suffix == "s" and word.endswith(("ss", "us", "is")):
                return word
            return word[: -len(suffix)] + replacement
    return word


@dataclass(frozen=True, slots=True)
class DocumentInfo:
    """What the index remembers of a document (its text lives in the chunks)."""

    doc_id: str
    title: str
    media_type: str
    sha256: str
    chunks: int


@dataclass(frozen=True, slots=True)
class IndexInfo:
    generation: int
    model_id: str
    chunker_version: str
    documents: int
    chunks: int
    built_at: str  # RFC 3339, UTC


class SearchIndex:
    """Chunks plus the two searches over them. Rows are positions in ``chunks``."""

    def __init__(
        self,
        info: IndexInfo,
        documents: Mapping[str, DocumentInfo],
        chunks: Sequence[Chunk],
        vectors: Vectors,
        hnsw: Any,
        bm25: Any,
    ) -> None:
        if len(chunks) != vectors.shape[0]:
            raise ValueError(f"{len(chunks)} chunks but {vectors.shape[0]} vectors")
        self.info = info
        self.documents = dict(documents)
        self.chunks = tuple(chunks)
        self.vectors = vectors
        self._hnsw = hnsw
        self._bm25 = bm25
        self._vocab: Mapping[str, int] = getattr(bm25, "vocab_dict", None) or {}

    def __repr__(self) -> str:
        i = self.info
        return f"SearchIndex(generation={i.generation}, documents={i.documents}, chunks={i.chunks})"

    @property
    def hnsw(self) -> Any:
        return self._hnsw

    @property
    def bm25(self) -> Any:
        return self._bm25

    def vector_search(self, query: Vectors, k: int) -> list[tuple[int, float]]:
        """The ``k`` rows nearest to ``query`` (one normalised row) with cosine similarity."""
        if not self.chunks:
            return []
        scores, rows = self._hnsw.search(query.reshape(1, -1), min(k, len(self.chunks)))
        return [(int(r), float(s)) for r, s in zip(rows[0], scores[0], strict=True) if r >= 0]

    def keyword_search(self, terms: Sequence[str], k: int) -> list[tuple[int, float]]:
        """The ``k`` best BM25 rows for ``terms`` (rows scoring zero are left out)."""
        known = [t for t in terms if t in self._vocab]
        if not known or not self.chunks:
            return []
        scores: npt.NDArray[np.float32] = self._bm25.get_scores(known)
        k = min(k, len(scores))
        top = np.argpartition(-scores, k - 1)[:k]
        top = top[np.argsort(-scores[top], kind="stable")]
        return [(int(r), float(scores[r])) for r in top if scores[r] > 0]


def build_index(
    documents: Iterable[Document],
    embedder: Embedder,
    *,
    generation: int = 1,
    previous: SearchIndex | None = None,
) -> SearchIndex:
    """Index ``documents`` from scratch, reusing ``previous``'s vectors for unchanged chunks."""
    infos: dict[str, DocumentInfo] = {}
    chunks: list[Chunk] = []
    for doc in documents:
        doc_chunks = chunk_document(doc)
        infos[doc.doc_id] = _doc_info(doc, len(doc_chunks))
        chunks.extend(doc_chunks)
    return _assemble(infos, chunks, embedder, generation, previous)


def with_documents(
    index: SearchIndex, documents: Sequence[Document], embedder: Embedder
) -> SearchIndex:
    """The next generation: ``documents`` added, or replacing those with the same ids."""
    replaced = {d.doc_id for d in documents}
    infos = {k: v for k, v in index.documents.items() if k not in replaced}
    chunks = [c for c in index.chunks if c.doc_id not in replaced]
    for doc in documents:
        doc_chunks = chunk_document(doc)
        infos[doc.doc_id] = _doc_info(doc, len(doc_chunks))
        chunks.extend(doc_chunks)
    return _assemble(infos, chunks, embedder, index.info.generation + 1, index)


def _doc_info(doc: Document, chunks: int) -> DocumentInfo:
    return DocumentInfo(doc.doc_id, doc.title, doc.media_type, doc.sha256, chunks)


def _assemble(
    infos: Mapping[str, DocumentInfo],
    chunks: Sequence[Chunk],
    embedder: Embedder,
    generation: int,
    previous: SearchIndex | None,
) -> SearchIndex:
    vectors = _vectors_for(chunks, embedder, previous)
    info = IndexInfo(
        generation=generation,
        model_id=embedder.model_id,
        chunker_version=CHUNKER_VERSION,
        documents=len(infos),
        chunks=len(chunks),
        built_at=datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
    )
    return SearchIndex(
        info, infos, chunks, vectors, build_hnsw(vectors, embedder.dimension), build_bm25(chunks)
    )


def _vectors_for(
    chunks: Sequence[Chunk], embedder: Embedder, previous: SearchIndex | None
) -> Vectors:
    cached: dict[str, int] = {}
    if previous is not None and previous.info.model_id == embedder.model_id:
        cached = {c.chunk_id: row for row, c in enumerate(previous.chunks)}
    vectors = np.zeros((len(chunks), embedder.dimension), dtype=np.float32)
    missing = [i for i, c in enumerate(chunks) if c.chunk_id not in cached]
    for i, c in enumerate(chunks):
        if c.chunk_id in cached and previous is not None:
            vectors[i] = previous.vectors[cached[c.chunk_id]]
    if missing:
        vectors[missing] = embedder.embed([embedding_text(chunks[i]) for i in missing])
    return vectors


def build_hnsw(vectors: Vectors, dimension: int) -> Any:
    import faiss

    hnsw = faiss.IndexHNSWFlat(dimension, HNSW_NEIGHBOURS, faiss.METRIC_INNER_PRODUCT)
    hnsw.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
    hnsw.hnsw.efSearch = HNSW_EF_SEARCH
    if len(vectors):
        hnsw.add(vectors)
    return hnsw


def build_bm25(chunks: Sequence[Chunk]) -> Any:
    import bm25s

    bm25 = bm25s.BM25()
    # An empty corpus still gets a (trivial) index so searches need no special case.
    corpus = [tokenize(f"{c.title} {c.section} {c.text}") or [""] for c in chunks] or [[""]]
    bm25.index(corpus, show_progress=False)
    return bm25
