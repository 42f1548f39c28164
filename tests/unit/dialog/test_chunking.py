"""Chunking: exact spans, sections from headings, bounded sizes, ids stable across runs."""

from __future__ import annotations

from switchyard.dialog.chunking import MAX_WORDS, chunk_document, embedding_text
from switchyard.dialog.model import Document


def _doc(text: str, doc_id: str = "handbook/leave.md") -> Document:
    return Document(doc_id, "Leave", text, "text/markdown", "0" * 64)


TEXT = (
    "# Leave\n\nIntro paragraph about leave.\n\n## Sick leave\n\nCall your manager before 9.\n\n"
    "Bring a note after 3 days.\n\n## Parental leave\n\n" + "Caregivers get paid weeks. " * 120
)


def test_every_chunk_is_an_exact_span_of_the_document() -> None:
    doc = _doc(TEXT)

    chunks = chunk_document(doc)

    assert chunks
    for chunk in chunks:
        assert doc.text[chunk.start : chunk.end] == chunk.text


def test_headings_start_chunks_and_name_their_section() -> None:
    chunks = chunk_document(_doc(TEXT))

    sick = [c for c in chunks if c.section == "Sick leave"]
    assert len(sick) == 1
    assert "Call your manager before 9." in sick[0].text
    assert "Bring a note after 3 days." in sick[0].text
    assert "Caregivers" not in sick[0].text


def test_long_paragraphs_are_split_to_bounded_chunks() -> None:
    chunks = [c for c in chunk_document(_doc(TEXT)) if c.section == "Parental leave"]

    assert len(chunks) > 1
    assert all(len(c.text.split()) <= MAX_WORDS + 3 for c in chunks)  # + the heading line


def test_ids_are_stable_and_depend_on_content_not_position() -> None:
    first = chunk_document(_doc(TEXT))
    again = chunk_document(_doc(TEXT))
    edited = chunk_document(_doc("# Leave\n\nA new first paragraph.\n\n" + TEXT[9:]))

    assert [c.chunk_id for c in first] == [c.chunk_id for c in again]
    sick_id = next(c.chunk_id for c in first if c.section == "Sick leave")
    assert sick_id in {c.chunk_id for c in edited}


def test_repeated_passages_get_distinct_ids() -> None:
    chunks = chunk_document(_doc("## A\n\nSame words here.\n\n## A\n\nSame words here.\n"))

    assert len(chunks) == 2
    assert chunks[0].chunk_id != chunks[1].chunk_id


def test_embedding_text_carries_the_title_and_section() -> None:
    chunk = next(c for c in chunk_document(_doc(TEXT)) if c.section == "Sick leave")

    assert embedding_text(chunk).startswith("Leave — Sick leave: ")
