"""Tokenising, rank fusion and the confidence derived from retrieval (pure functions)."""

from __future__ import annotations

from support.dialog import HashEmbedder
from switchyard.dialog.index import SearchIndex, build_index, tokenize
from switchyard.dialog.model import Document
from switchyard.dialog.retrieval import RetrievalPolicy, Retriever, assess, fuse


def test_tokenize_folds_plurals_and_endings_and_drops_stop_words() -> None:
    assert tokenize("How do I reset my Passwords?") == ["reset", "password"]
    assert tokenize("booked bookings") == ["book", "booking"]
    assert tokenize("class status 2024") == ["class", "status", "2024"]


def _index() -> SearchIndex:
    docs = [
        Document(f"d{i}.md", f"Doc {i}", f"# Doc {i}\n\n{text}\n", "text/markdown", str(i) * 64)
        for i, text in enumerate(
            ["Vacation days carry over.", "VPN client setup.", "Parking permits."]
        )
    ]
    return build_index(docs, HashEmbedder())


def test_fusion_rewards_rows_both_searches_rank() -> None:
    index = _index()

    hits = fuse(index, [(0, 0.9), (1, 0.8)], [(1, 7.0), (2, 3.0)], top_k=3, rrf_k=60)

    assert [h.chunk.doc_id for h in hits] == ["d1.md", "d0.md", "d2.md"]
    assert hits[0].similarity == 0.8
    assert hits[0].bm25 == 7.0
    assert hits[1].bm25 is None
    assert hits[2].similarity is None


def test_fusion_keeps_top_k() -> None:
    hits = fuse(_index(), [(0, 0.9), (1, 0.8), (2, 0.1)], [], top_k=2, rrf_k=60)

    assert len(hits) == 2


def test_confidence_scales_with_similarity_and_marks_irrelevance() -> None:
    index = _index()
    policy = RetrievalPolicy(min_similarity=0.3, confident_similarity=0.7)

    strong = fuse(index, [(0, 0.8)], [(0, 5.0)], top_k=5, rrf_k=60)
    middling = fuse(index, [(0, 0.5)], [(0, 5.0)], top_k=5, rrf_k=60)
    weak = fuse(index, [(0, 0.2)], [(0, 5.0)], top_k=5, rrf_k=60)

    assert assess(strong, policy) == (1.0, True)
    assert assess(middling, policy) == (0.5, True)
    assert assess(weak, policy) == (0.0, False)
    assert assess((), policy) == (0.0, False)


def test_disagreement_between_searches_lowers_confidence() -> None:
    policy = RetrievalPolicy(min_similarity=0.3, confident_similarity=0.7)
    agreed = fuse(_index(), [(0, 0.5)], [(0, 5.0)], top_k=5, rrf_k=60)
    vector_only = fuse(_index(), [(0, 0.5)], [], top_k=5, rrf_k=60)

    assert assess(vector_only, policy)[0] < assess(agreed, policy)[0]


def test_retriever_times_its_stages_and_finds_the_matching_document() -> None:
    retrieval = Retriever(HashEmbedder()).retrieve(_index(), "vpn client")

    assert retrieval.hits[0].chunk.doc_id == "d1.md"
    assert retrieval.embed_ms >= 0
    assert retrieval.search_ms >= 0
