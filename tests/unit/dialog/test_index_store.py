"""Index generations on disk: round trip, atomic switch, refusal of foreign or damaged files,
and incremental rebuilds that embed only what changed."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from support.dialog import HashEmbedder
from switchyard.dialog.chunking import CHUNKER_VERSION
from switchyard.dialog.index import build_index, with_documents
from switchyard.dialog.model import Document
from switchyard.dialog.store import IndexMismatchError, IndexStore


def _docs(n: int, salt: str = "") -> list[Document]:
    return [
        Document(
            f"doc{i}.md",
            f"Doc {i}",
            f"# Doc {i}\n\nTopic {i} {salt} explains rule number {i}.\n\nMore about {i}.\n",
            "text/markdown",
            f"{i}{salt}".ljust(64, "0"),
        )
        for i in range(n)
    ]


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
    folder = store.save(build_index(_docs(3), embedder))
    with (folder / "chunks.jsonl").open("r+b") as f:
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
