"""Extractive answers: sentences from one document, cited by exact span; no guessing."""

from __future__ import annotations

from switchyard.dialog.answering import NOT_FOUND_TEXT, extractive_answer
from switchyard.dialog.model import AnswerKind, Chunk, Hit, Retrieval

DOC = (
    "# Vacation\n\nEvery employee gets **25 days** of paid vacation. Requests go through "
    "PeopleHub.\n\n- You may carry over up to 5 days into the next year.\n"
)


def _chunk(doc_id: str, start: int, end: int, text: str = DOC) -> Chunk:
    return Chunk(f"{doc_id}-{start}", doc_id, "Vacation", "Vacation", start, end, text[start:end])


def _retrieval(*hits: Hit, relevant: bool = True) -> Retrieval:
    return Retrieval(hits, 0.8, relevant, 1.0, 1.0)


def test_answer_quotes_the_best_matching_sentences_with_exact_spans() -> None:
    chunk = _chunk("handbook/vacation.md", 0, len(DOC))
    answer = extractive_answer(
        "How many vacation days can I carry over?", _retrieval(Hit(chunk, 0.03, 0.7, 5.0))
    )

    assert answer.kind is AnswerKind.EXTRACTIVE
    assert answer.citations
    for citation in answer.citations:
        assert DOC[citation.start : citation.end] == citation.text
        assert citation.doc_id == "handbook/vacation.md"
    assert "carry over up to 5 days" in answer.text
    assert "**" not in answer.text  # emphasis marks are dropped from the answer text
    assert answer.confidence == 0.8


def test_sentences_come_from_the_document_most_similar_to_the_question() -> None:
    other = "# Parking\n\nVacation parking permits carry over to the next year too.\n"
    best = _chunk("handbook/vacation.md", 0, len(DOC))
    keyword_match = _chunk("facilities/parking.md", 0, len(other), other)

    answer = extractive_answer(
        "Do vacation days carry over to next year?",
        _retrieval(Hit(keyword_match, 0.033, 0.35, 9.0), Hit(best, 0.032, 0.71, 4.0)),
    )

    assert {c.doc_id for c in answer.citations} == {"handbook/vacation.md"}


def test_nothing_relevant_means_saying_so_without_citations() -> None:
    chunk = _chunk("handbook/vacation.md", 0, len(DOC))

    answer = extractive_answer(
        "What is the boiling point of tungsten?",
        _retrieval(Hit(chunk, 0.01, 0.1, None), relevant=False),
    )

    assert answer.kind is AnswerKind.NOT_FOUND
    assert answer.text == NOT_FOUND_TEXT
    assert answer.citations == ()


def test_no_hits_is_not_found() -> None:
    assert extractive_answer("anything", _retrieval()).kind is AnswerKind.NOT_FOUND
