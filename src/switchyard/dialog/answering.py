"""Extractive answers: the sentences of the retrieved chunks that best match the question,
each cited by document, chunk and exact character span. Pure functions of the retrieval.

The answer is taken from one document: the one holding the chunk most similar to the question
(cosine similarity, not the fused rank: a chunk can rank high on shared keywords alone).
Mixing sentences from two documents reads badly and, measured on the golden questions, the
second document was the wrong one far more often than it helped.

When retrieval found nothing relevant the answer says so (``AnswerKind.NOT_FOUND``) rather
than quoting the nearest unrelated passage.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from switchyard.dialog.index import tokenize
from switchyard.dialog.model import Answer, AnswerKind, Citation, Hit, Retrieval

NOT_FOUND_TEXT = (
    "I couldn't find anything about that in the documents I have, so I'd rather not guess. "
    "Try rephrasing the question, or ask the IT helpdesk or HR directly."
)
MAX_SENTENCES = 2
# A chunk is worth quoting only if it is itself close to the question: hits fused in from the
# keyword search alone can be only loosely related.
MIN_HIT_SIMILARITY = 0.25

_EMPHASIS = re.compile(r"\*\*|__|`")
_SENTENCE = re.compile(r"[^.!?\n]+(?:[.!?]+(?=\s|$)|$)", re.MULTILINE)


@dataclass(frozen=True, slots=True)
class _Sentence:
    hit_rank: int
    hit: Hit
    start: int  # offsets into the document text
    end: int
    text: str
    score: float


def extractive_answer(question: str, retrieval: Retrieval) -> Answer:
    """Up to ``MAX_SENTENCES`` sentences from the best hits, in the order they were ranked."""
    if not retrieval.relevant or not retrieval.hits:
        return Answer(NOT_FOUND_TEXT, AnswerKind.NOT_FOUND, retrieval.confidence)
    terms = set(tokenize(question))
    anchor = _anchor(retrieval.hits)
    hits = [h for h in retrieval.hits if h.chunk.doc_id == anchor.chunk.doc_id]
    candidates = [s for s in _sentences(hits, anchor) if len(s.text.split()) >= 3]
    if not candidates:
        return Answer(NOT_FOUND_TEXT, AnswerKind.NOT_FOUND, retrieval.confidence)
    scored = [_score(s, terms) for s in candidates]
    chosen = sorted(scored, key=lambda s: s.score, reverse=True)[:MAX_SENTENCES]
    # Keep only sentences nearly as good as the best, then restore reading order.
    best = chosen[0].score
    chosen = [s for s in chosen if s.score >= 0.5 * best]
    chosen.sort(key=lambda s: (s.hit_rank, s.start))
    citations = tuple(
        Citation(s.hit.chunk.doc_id, s.hit.chunk.chunk_id, s.hit.score, s.start, s.end, s.text)
        for s in chosen
    )
    text = " ".join(_plain(s.text) for s in chosen)
    return Answer(text, AnswerKind.EXTRACTIVE, retrieval.confidence, citations)


def _anchor(hits: Sequence[Hit]) -> Hit:
    """The hit most similar to the question (the fused top hit if none has a similarity)."""
    return max(hits, key=lambda h: -1.0 if h.similarity is None else h.similarity)


def _sentences(hits: Sequence[Hit], anchor: Hit) -> Iterator[_Sentence]:
    """Sentences of ``hits``, the anchor's first (rank 0), then the others in fused order."""
    ordered = [anchor, *(h for h in hits if h is not anchor)]
    for rank, hit in enumerate(ordered):
        if hit.similarity is not None and hit.similarity < MIN_HIT_SIMILARITY:
            continue
        chunk = hit.chunk
        for m in _SENTENCE.finditer(chunk.text):
            raw = m.group()
            stripped = raw.strip()
            if not stripped or stripped.startswith("#"):
                continue  # headings name a section; they do not answer anything
            # Offsets of the sentence without leading space and list or table markup.
            marker = len(stripped) - len(stripped.lstrip("-*•|> "))
            clean = stripped[marker:].strip()
            offset = chunk.start + m.start() + (len(raw) - len(raw.lstrip())) + marker
            yield _Sentence(rank, hit, offset, offset + len(clean), clean, 0.0)


def _score(sentence: _Sentence, terms: set[str]) -> _Sentence:
    """Query terms the sentence contains (each once), discounted by its hit's rank."""
    words = set(tokenize(sentence.text))
    overlap = len(terms & words)
    score = (overlap + 0.25) / (1 + 0.35 * sentence.hit_rank)
    return _Sentence(
        sentence.hit_rank, sentence.hit, sentence.start, sentence.end, sentence.text, score
    )


def _plain(sentence: str) -> str:
    """Markdown emphasis and code marks removed (the citation keeps the original span)."""
    return _EMPHASIS.sub("", sentence)
