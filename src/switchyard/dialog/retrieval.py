"""Hybrid retrieval: vector and BM25 searches fused by reciprocal rank, and how sure we are.

``fuse`` and ``assess`` are pure; ``Retriever`` adds the embedding call and the timings.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

from switchyard.dialog.embedding import Embedder, Vectors
from switchyard.dialog.index import SearchIndex, tokenize
from switchyard.dialog.model import Hit, Retrieval


@dataclass(frozen=True, slots=True)
class RetrievalPolicy:
    """Knobs of retrieval. The similarity bounds were calibrated on the golden questions
    (answerable and out-of-scope ones) with bench/dialog_chat.py and ``switchyard eval``.

    - ``candidates``: how deep each search goes before fusion;
    - ``rrf_k``: the reciprocal-rank constant (60, the value of the original RRF paper);
    - ``min_similarity``: below this cosine similarity of the best chunk, nothing is relevant;
    - ``confident_similarity``: at or above it, confidence from similarity is 1.
    """

    top_k: int = 5
    candidates: int = 40
    rrf_k: int = 60
    min_similarity: float = 0.30
    confident_similarity: float = 0.70


def fuse(
    index: SearchIndex,
    vector_rows: Sequence[tuple[int, float]],
    keyword_rows: Sequence[tuple[int, float]],
    *,
    top_k: int,
    rrf_k: int,
) -> tuple[Hit, ...]:
    """Reciprocal rank fusion: each list adds ``1 / (rrf_k + rank)`` for every row it ranks.

    Ties keep the vector order (the sort is stable and vector rows are seen first).
    """
    fused: dict[int, float] = {}
    similarity: dict[int, float] = {}
    bm25: dict[int, float] = {}
    for rank, (row, score) in enumerate(vector_rows, start=1):
        fused[row] = fused.get(row, 0.0) + 1.0 / (rrf_k + rank)
        similarity[row] = score
    for rank, (row, score) in enumerate(keyword_rows, start=1):
        fused[row] = fused.get(row, 0.0) + 1.0 / (rrf_k + rank)
        bm25[row] = score
    best = sorted(fused, key=lambda row: fused[row], reverse=True)[:top_k]
    return tuple(
        Hit(index.chunks[row], round(fused[row], 6), similarity.get(row), bm25.get(row))
        for row in best
    )


def assess(hits: Sequence[Hit], policy: RetrievalPolicy) -> tuple[float, bool]:
    """(confidence in [0, 1], relevant): from the best cosine similarity among the hits.

    Confidence rises linearly from ``min_similarity`` (0) to ``confident_similarity`` (1) and
    is lowered by a quarter when the two searches disagree on the best chunk (the top fused hit
    was found by only one of them), a sign the match is lexical or semantic but not both.
    """
    similarities = [h.similarity for h in hits if h.similarity is not None]
    if not similarities:
        return 0.0, False
    best = max(similarities)
    span = policy.confident_similarity - policy.min_similarity
    confidence = min(1.0, max(0.0, (best - policy.min_similarity) / span))
    top = hits[0]
    if top.similarity is None or top.bm25 is None:
        confidence *= 0.75
    return round(confidence, 3), best >= policy.min_similarity


class Retriever:
    """Embeds a query and runs the hybrid search over whichever index it is given."""

    def __init__(self, embedder: Embedder, policy: RetrievalPolicy | None = None) -> None:
        self.embedder = embedder
        self.policy = policy or RetrievalPolicy()

    def embed(self, query: str) -> Vectors:
        row: Vectors = self.embedder.embed([query])[0]
        return row

    def retrieve(
        self,
        index: SearchIndex,
        query: str,
        *,
        vector: Vectors | None = None,
        top_k: int | None = None,
    ) -> Retrieval:
        """Search ``index`` for ``query``; pass ``vector`` when the query is already embedded."""
        t0 = time.perf_counter()
        if vector is None:
            vector = self.embed(query)
        t1 = time.perf_counter()
        p = self.policy
        hits = fuse(
            index,
            index.vector_search(vector, p.candidates),
            index.keyword_search(tokenize(query), p.candidates),
            top_k=top_k or p.top_k,
            rrf_k=p.rrf_k,
        )
        t2 = time.perf_counter()
        confidence, relevant = assess(hits, p)
        return Retrieval(
            hits=hits,
            confidence=confidence,
            relevant=relevant,
            embed_ms=round((t1 - t0) * 1000, 3),
            search_ms=round((t2 - t1) * 1000, 3),
        )
