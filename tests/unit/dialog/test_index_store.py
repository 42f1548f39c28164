"""Index generations on disk: round trip, atomic switch, refusal of foreign or damaged files,
and incremental rebuilds that embed only what changed."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from support.dialog import HashEmbedder
from support.dialog import numbered_docs as _docs
from switchyard.dialog.chunking import CHUNKER_VERSION
from switchyard.dialog.index import build_index, tokenize, with_documents
from switchyard.dialog.model import Document
from switchyard.dialog.segments import MAX_SEGMENTS, plan_merge
from switchyard.dialog.store import IndexMismatchError, IndexStore


def test_saved_generation_loads_identically(tmp_path: Path) -> None:
    embedder = HashEmbedder()
    index = build_index(_docs(5), embedder)
    store = IndexStore(tmp_path)

    store.save(index)
    loaded = store.load(model_id=embedder.model_id, chunker_version=CHUNKER_VERSION)

    assert loaded.info == index.info
    assert loaded.chunks == index.chunks
    assert np.array_equal(loaded.vectors, index.vectors)
    query = embedder.embed(["topic 3 rule"])[0]
    assert loaded.vector_search(query, 3) == index.vector_search(query, 3)
    assert loaded.keyword_search(["topic", "3"], 3) == index.keyword_search(["topic", "3"], 3)


def test_current_points_at_the_newest_saved_generation(tmp_path: Path) -> None:
    embedder = HashEmbedder()
    store = IndexStore(tmp_path)
    first = build_index(_docs(2), embedder)
    second = with_documents(first, _docs(1, salt="changed"), embedder)

    store.save(first)
    path = store.save(second)

    assert store.current_path() == path
    assert second.info.generation == first.info.generation + 1
    assert store.load(model_id=embedder.model_id, chunker_version=CHUNKER_VERSION).info == (
        second.info
    )


def test_an_index_from_another_model_or_chunker_is_refused(tmp_path: Path) -> None:
    store = IndexStore(tmp_path)
    store.save(build_index(_docs(2), HashEmbedder(model_id="model-a")))

    with pytest.raises(IndexMismatchError, match="model-a"):
        store.load(model_id="model-b", chunker_version=CHUNKER_VERSION)
    with pytest.raises(IndexMismatchError, match="chunked by"):
        store.load(model_id="model-a", chunker_version="other-v9")


def test_a_damaged_file_is_detected(tmp_path: Path) -> None:
    embedder = HashEmbedder()
    store = IndexStore(tmp_path)
    index = build_index(_docs(3), embedder)
    store.save(index)
    with (tmp_path / "segments" / index.segments[0].id / "chunks.jsonl").open("r+b") as f:
        f.seek(10)
        f.write(b"X")

    with pytest.raises(IndexMismatchError, match=r"chunks\.jsonl"):
        store.load(model_id=embedder.model_id, chunker_version=CHUNKER_VERSION)


def test_rebuilds_embed_only_new_or_changed_chunks() -> None:
    embedder = HashEmbedder()
    index = build_index(_docs(10), embedder)
    before = embedder.embedded

    changed = _docs(1, salt="new wording")  # replaces doc0.md
    nxt = with_documents(index, changed, embedder)

    assert embedder.embedded - before == nxt.documents["doc0.md"].chunks
    assert nxt.info.documents == 10
    assert all(
        c.doc_id != "doc0.md" or "new wording" in c.text or "More" in c.text for c in nxt.chunks
    )


# -- segments: incremental generations ------------------------------------------------------


def test_replacing_a_document_adds_one_segment_and_hides_the_old_copy() -> None:
    embedder = HashEmbedder()
    index = build_index(_docs(10), embedder)
    old = index.segments[0]

    nxt = with_documents(index, _docs(1, salt="rewritten"), embedder)

    assert [s.id for s in nxt.segments][:1] == [old.id]  # the big segment is reused as is
    assert len(nxt.segments) == 2
    assert nxt.deleted[old.id] == frozenset({"doc0.md"})
    assert nxt.info.documents == 10
    live_rows = {r for r, _ in nxt.vector_search(embedder.embed(["Topic 0"])[0], 100)}
    assert all(
        "rewritten" in nxt.chunks[r].text or nxt.chunks[r].doc_id != "doc0.md"
        for r in live_rows
        if "Topic 0" in nxt.chunks[r].text
    )
    hidden = set(range(len(old.chunks))) & {
        r for r, c in enumerate(nxt.chunks) if c.doc_id == "doc0.md"
    }
    assert hidden
    assert not hidden & live_rows
    assert not hidden & {r for r, _ in nxt.keyword_search(["topic", "0"], 100)}


def test_saving_the_next_generation_writes_only_its_new_segment(tmp_path: Path) -> None:
    embedder = HashEmbedder()
    store = IndexStore(tmp_path)
    first = build_index(_docs(20), embedder)
    store.save(first)
    big = tmp_path / "segments" / first.segments[0].id / "vectors.npy"
    written = big.stat().st_mtime_ns

    second = with_documents(first, _docs(1, salt="v2"), embedder)
    store.save(second)

    assert big.stat().st_mtime_ns == written
    assert sorted(p.name for p in (tmp_path / "segments").iterdir()) == sorted(
        s.id for s in second.segments
    )
    loaded = store.load(model_id=embedder.model_id, chunker_version=CHUNKER_VERSION)
    query = embedder.embed(["topic 0 v2 rule"])[0]
    assert loaded.vector_search(query, 5) == second.vector_search(query, 5)
    assert loaded.keyword_search(["topic", "v2"], 5) == second.keyword_search(["topic", "v2"], 5)


def test_many_small_changes_are_merged_into_few_segments() -> None:
    embedder = HashEmbedder()
    index = build_index(_docs(30), embedder)
    for i in range(12):
        index = with_documents(index, _docs(1, salt=f"round{i}"), embedder)  # doc0 again

    assert len(index.segments) <= MAX_SEGMENTS
    assert index.info.documents == 30
    texts = [index.chunks[r].text for r, _ in index.keyword_search(["round11"], 10)]
    assert texts
    assert all("round11" in t for t in texts)
    assert not index.keyword_search(["round10"], 10)  # replaced by round 11


def test_merge_plan_drops_empty_rewrites_mostly_deleted_and_bounds_the_count() -> None:
    assert plan_merge([(100, 0), (5, 0)]) == []
    assert plan_merge([(100, 0), (5, 5)]) == [1]
    assert plan_merge([(100, 60), (5, 0)]) == [0]
    nine = [(1000, 0)] + [(10 + i, 0) for i in range(8)]
    chosen = plan_merge(nine)
    assert 0 not in chosen
    assert len(nine) - len(chosen) + 1 == MAX_SEGMENTS // 2


def test_bm25_scores_follow_the_lucene_formula() -> None:
    embedder = HashEmbedder()
    docs = [
        Document("a.md", "A", "# A\n\nalpha beta beta gamma\n", "text/markdown", "a" * 64),
        Document("b.md", "B", "# B\n\nalpha delta\n", "text/markdown", "b" * 64),
        Document("c.md", "C", "# C\n\nepsilon zeta\n", "text/markdown", "c" * 64),
    ]
    index = build_index(docs, embedder)
    tokens = [tokenize(f"{c.title} {c.section} {c.text}") for c in index.chunks]
    n, avg = len(tokens), sum(map(len, tokens)) / len(tokens)

    def expected(row: int, term: str) -> float:
        df = sum(term in t for t in tokens)
        idf = math.log(1 + (n - df + 0.5) / (df + 0.5))
        tf = tokens[row].count(term)
        return idf * tf / (tf + 1.5 * (1 - 0.75 + 0.75 * len(tokens[row]) / avg))

    hits = index.keyword_search(["beta", "alpha"], 3)
    rows = {r for r, _ in hits}
    assert rows == {r for r, t in enumerate(tokens) if "alpha" in t or "beta" in t}
    for row, score in hits:
        assert score == pytest.approx(expected(row, "beta") + expected(row, "alpha"), rel=1e-5)
