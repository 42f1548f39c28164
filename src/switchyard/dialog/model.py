"""Value types of the dialog runtime: documents, chunks, retrieval hits, answers.

Everything here is frozen and free of I/O, so retrieval, answering and the dialog manager pass
plain values between them and tests build them by hand.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


@dataclass(frozen=True, slots=True)
class Document:
    """A loaded document: its id (a relative path such as ``it/vpn.md``) and extracted text.

    ``sha256`` is of the original bytes, so re-adding identical content is recognised as a no-op.
    """

    doc_id: str
    title: str
    text: str
    media_type: str
    sha256: str


@dataclass(frozen=True, slots=True)
class Chunk:
    """A passage of a document; ``text == document.text[start:end]``.

    ``chunk_id`` depends only on the document id and the passage text, so re-indexing an
    unchanged document yields the same ids (and the same cached embeddings).
    """

    chunk_id: str
    doc_id: str
    title: str
    section: str
    start: int
    end: int
    text: str


@dataclass(frozen=True, slots=True)
class Hit:
    """One retrieved chunk. ``score`` is the fused (reciprocal rank) score that orders hits;
    ``similarity`` the cosine similarity of the query to the chunk (None if the vector search
    did not return it); ``bm25`` its BM25 score (None if the keyword search did not)."""

    chunk: Chunk
    score: float
    similarity: float | None
    bm25: float | None


@dataclass(frozen=True, slots=True)
class Retrieval:
    """The outcome of one hybrid search: hits best first and the time each stage took."""

    hits: tuple[Hit, ...]
    confidence: float
    relevant: bool
    embed_ms: float
    search_ms: float

    @property
    def documents(self) -> tuple[str, ...]:
        """Document ids of the hits, best first, each once."""
        return tuple(dict.fromkeys(h.chunk.doc_id for h in self.hits))


@dataclass(frozen=True, slots=True)
class Citation:
    """Where an answer's sentence came from: ``text == document.text[start:end]``."""

    doc_id: str
    chunk_id: str
    score: float
    start: int
    end: int
    text: str


class AnswerKind(StrEnum):
    """How an answer was produced; stable values for logs, metrics and clients."""

    EXTRACTIVE = "extractive"
    GENERATED = "generated"
    NOT_FOUND = "not_found"
    DIALOG = "dialog"


@dataclass(frozen=True, slots=True)
class Answer:
    text: str
    kind: AnswerKind
    confidence: float
    citations: tuple[Citation, ...] = field(default_factory=tuple)

    @property
    def cited_documents(self) -> tuple[str, ...]:
        """Document ids the citations point into, in order, each once."""
        return tuple(dict.fromkeys(c.doc_id for c in self.citations))
