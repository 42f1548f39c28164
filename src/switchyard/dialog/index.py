"""The search index of one region: segments of chunks with their vectors (FAISS HNSW) and BM25
term counts, searched together.

A ``SearchIndex`` is one generation: an immutable list of segments (``segments.py``) and the
documents deleted from each. Adding or replacing documents builds the next generation with one
new segment for them (reusing the vectors of every unchanged chunk, so only new text is
embedded) and the old copies marked deleted; the runtime swaps the reference, and searches in
flight finish on the generation they started with. On disk: ``store.py``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cached_property

import numpy as np

from switchyard.dialog.bm25 import KeywordScorer
from switchyard.dialog.chunking import CHUNKER_VERSION, chunk_document, embedding_text
from switchyard.dialog.embedding import Embedder, Vectors
from switchyard.dialog.model import Chunk, Document
from switchyard.dialog.segments import (
    DocumentInfo,
    Segment,
    TermCounts,
    VectorSearch,
    build_segment,
    merge,
    plan_merge,
)

__all__ = ["DocumentInfo", "IndexInfo", "SearchIndex", "build_index", "tokenize", "with_documents"]

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
class IndexInfo:
    generation: int
    model_id: str
    chunker_version: str
    documents: int
    chunks: int  # live chunks
    built_at: str  # RFC 3339, UTC


class SearchIndex:
    """Segments plus the two searches over their live rows.

    Rows are positions in ``chunks``: every segment's rows in order, deleted ones included (they
    are never returned by a search).
    """

    def __init__(
        self,
        info: IndexInfo,
        segments: Sequence[Segment],
        deleted: Mapping[str, frozenset[str]],
    ) -> None:
        self.info = info
        self.segments = tuple(segments)
        self.deleted = {s.id: frozenset(deleted.get(s.id, ())) for s in self.segments}
        self.chunks = tuple(c for s in self.segments for c in s.chunks)
        self.documents, dead = _live(self.segments, self.deleted)
        self._offsets = np.cumsum([0] + [len(s.chunks) for s in self.segments])
        self._vectors = [VectorSearch(s, d) for s, d in zip(self.segments, dead, strict=True)]
        self._keywords = KeywordScorer(list(zip(self.segments, dead, strict=True)))
        live = len(self.chunks) - sum(len(d) for d in dead)
        if (info.documents, info.chunks) != (len(self.documents), live):
            raise ValueError(
                f"info says {info.documents} documents and {info.chunks} chunks, "
                f"segments hold {len(self.documents)} and {live}"
            )

    def __repr__(self) -> str:
        i = self.info
        return (
            f"SearchIndex(generation={i.generation}, documents={i.documents}, chunks={i.chunks}, "
            f"segments={len(self.segments)})"
        )

    @cached_property
    def vectors(self) -> Vectors:
        """Every row's vector (deleted rows included), aligned with ``chunks``."""
        if not self.segments:
            return np.zeros((0, 0), dtype=np.float32)
        return np.concatenate([s.vectors for s in self.segments])

    def vector_search(self, query: Vectors, k: int) -> list[tuple[int, float]]:
        """The ``k`` live rows nearest to ``query`` (one normalised row) with cosine similarity."""
        found = [
            (int(offset) + row, score)
            for offset, search in zip(self._offsets, self._vectors, strict=False)
            for row, score in search.search(query, k)
        ]
        found.sort(key=lambda hit: -hit[1])
        return found[:k]

    def keyword_search(self, terms: Sequence[str], k: int) -> list[tuple[int, float]]:
        """The ``k`` best BM25 live rows for ``terms`` (rows scoring zero are left out)."""
        return self._keywords.search(terms, k)


def build_index(
    documents: Iterable[Document],
    embedder: Embedder,
    *,
    generation: int = 1,
    previous: SearchIndex | None = None,
) -> SearchIndex:
    """Index ``documents`` from scratch as one segment, reusing ``previous``'s vectors for
    unchanged chunks."""
    segment = _segment_of(list(documents), embedder, previous)
    return _generation([segment] if segment.documents else [], {}, embedder, generation)


def with_documents(
    index: SearchIndex, documents: Sequence[Document], embedder: Embedder
) -> SearchIndex:
    """The next generation: ``documents`` added, or replacing those with the same ids.

    They go into one new segment; their old copies are marked deleted; then segments are merged
    if ``plan_merge`` says so.
    """
    replaced = frozenset(d.doc_id for d in documents)
    deleted = {s.id: index.deleted[s.id] | (replaced & s.documents.keys()) for s in index.segments}
    segments = [*index.segments, _segment_of(documents, embedder, index)]
    deleted[segments[-1].id] = frozenset()
    chosen = plan_merge([(len(s.chunks), len(s.rows_of(deleted[s.id]))) for s in segments])
    if chosen:
        merged = merge([segments[i] for i in chosen], deleted)
        kept = [s for i, s in enumerate(segments) if i not in chosen]
        segments = [*kept, merged] if merged.documents else kept
        deleted = {s.id: deleted.get(s.id, frozenset()) for s in segments}
    return _generation(segments, deleted, embedder, index.info.generation + 1)


def _generation(
    segments: Sequence[Segment],
    deleted: Mapping[str, frozenset[str]],
    embedder: Embedder,
    generation: int,
) -> SearchIndex:
    documents, dead = _live(segments, deleted)
    info = IndexInfo(
        generation=generation,
        model_id=embedder.model_id,
        chunker_version=CHUNKER_VERSION,
        documents=len(documents),
        chunks=sum(len(s.chunks) for s in segments) - sum(len(d) for d in dead),
        built_at=datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
    )
    return SearchIndex(info, segments, deleted)


def _live(
    segments: Sequence[Segment], deleted: Mapping[str, frozenset[str]]
) -> tuple[dict[str, DocumentInfo], list[list[int]]]:
    """The live documents of ``segments``, and each segment's dead rows."""
    documents = {
        doc_id: d
        for s in segments
        for doc_id, d in s.documents.items()
        if doc_id not in deleted.get(s.id, frozenset())
    }
    return documents, [s.rows_of(deleted.get(s.id, frozenset())) for s in segments]


def _segment_of(
    documents: Sequence[Document], embedder: Embedder, previous: SearchIndex | None
) -> Segment:
    infos: list[DocumentInfo] = []
    chunks: list[Chunk] = []
    for doc in documents:
        doc_chunks = chunk_document(doc)
        infos.append(
            DocumentInfo(doc.doc_id, doc.title, doc.media_type, doc.sha256, len(doc_chunks))
        )
        chunks.extend(doc_chunks)
    terms = TermCounts.of([tokenize(f"{c.title} {c.section} {c.text}") for c in chunks])
    return build_segment(infos, chunks, _vectors_for(chunks, embedder, previous), terms)


def _vectors_for(
    chunks: Sequence[Chunk], embedder: Embedder, previous: SearchIndex | None
) -> Vectors:
    cached: dict[str, Vectors] = {}
    if previous is not None and previous.info.model_id == embedder.model_id:
        cached = {
            c.chunk_id: s.vectors[row] for s in previous.segments for row, c in enumerate(s.chunks)
        }
    vectors = np.zeros((len(chunks), embedder.dimension), dtype=np.float32)
    missing = [i for i, c in enumerate(chunks) if c.chunk_id not in cached]
    for i, c in enumerate(chunks):
        if c.chunk_id in cached:
            vectors[i] = cached[c.chunk_id]
    if missing:
        vectors[missing] = embedder.embed([embedding_text(chunks[i]) for i in missing])
    return vectors
