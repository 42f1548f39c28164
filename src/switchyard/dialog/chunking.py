"""Split a document's text into chunks: passages of whole paragraphs under one heading.

Rules (``CHUNKER_VERSION`` names them and ``embedding_text``; change the version whenever the
chunks or the text embedded for them could change, because an index built by another version
is refused and rebuilt):

- a Markdown heading line (``#`` .. ``######``) starts a new chunk and names its section;
- paragraphs (separated by blank lines) are packed into a chunk up to ``target_words``;
- a paragraph longer than ``max_words`` is split at sentence ends, then at word boundaries;
- every chunk is an exact span of the document text (``text[start:end]``), so a citation can
  point into the original.
"""

from __future__ import annotations

import hashlib
import itertools
import re
from collections.abc import Iterator
from dataclasses import dataclass

from switchyard.dialog.model import Chunk, Document

CHUNKER_VERSION = "paragraphs-v2"
TARGET_WORDS = 110
MAX_WORDS = 180

_HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$")
_PARAGRAPH = re.compile(r"\S(?:.*?\S)??(?=\n[ \t]*\n|\s*\Z)", re.DOTALL)
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"'(])")


@dataclass(frozen=True, slots=True)
class _Span:
    start: int
    end: int
    words: int
    heading: str | None  # the heading text when this paragraph is a heading line


def chunk_document(
    doc: Document, *, target_words: int = TARGET_WORDS, max_words: int = MAX_WORDS
) -> list[Chunk]:
    """The document's chunks in reading order; ids unique within the document."""
    chunks: list[Chunk] = []
    seen: dict[str, int] = {}
    section = ""
    group: list[_Span] = []

    def flush() -> None:
        if group and any(s.heading is None for s in group):
            chunks.append(_make_chunk(doc, section, group[0].start, group[-1].end, seen))
        group.clear()

    for span in _spans(doc.text, max_words):
        if span.heading is not None:
            flush()
            section = span.heading
            group.append(span)
            continue
        words = sum(s.words for s in group if s.heading is None)
        if group and words and words + span.words > target_words:
            flush()
        group.append(span)
    flush()
    return chunks


def _spans(text: str, max_words: int) -> Iterator[_Span]:
    for match in _PARAGRAPH.finditer(text):
        start, end = match.start(), match.end()
        heading = _HEADING.match(match.group())
        if heading and "\n" not in match.group():
            yield _Span(start, end, 0, heading.group(2))
            continue
        yield from _split_long(text, start, end, max_words)


def _split_long(text: str, start: int, end: int, max_words: int) -> Iterator[_Span]:
    """The paragraph ``text[start:end]`` as spans of at most ``max_words`` words each."""
    words = len(text[start:end].split())
    if words <= max_words:
        yield _Span(start, end, words, None)
        return
    pieces = [start]
    for m in _SENTENCE_END.finditer(text, start, end):
        pieces.append(m.end())
    pieces.append(end)
    current = start
    count = 0
    for a, b in itertools.pairwise(pieces):
        n = len(text[a:b].split())
        if count and count + n > max_words:
            yield from _by_words(text, current, a, max_words)
            current, count = a, 0
        count += n
    yield from _by_words(text, current, end, max_words)


def _by_words(text: str, start: int, end: int, max_words: int) -> Iterator[_Span]:
    """Last resort for a sentence longer than ``max_words``: cut between words."""
    bounds = [m.span() for m in re.finditer(r"\S+", text[start:end])]
    for i in range(0, len(bounds), max_words):
        part = bounds[i : i + max_words]
        yield _Span(start + part[0][0], start + part[-1][1], len(part), None)


def _make_chunk(doc: Document, section: str, start: int, end: int, seen: dict[str, int]) -> Chunk:
    passage = doc.text[start:end]
    digest = hashlib.sha256(
        "\0".join((doc.doc_id, doc.title, section, passage)).encode()
    ).hexdigest()[:16]
    # The same passage twice in one document (a repeated disclaimer) still gets distinct ids.
    n = seen.get(digest, 0)
    seen[digest] = n + 1
    chunk_id = digest if n == 0 else f"{digest}-{n}"
    return Chunk(
        chunk_id=chunk_id,
        doc_id=doc.doc_id,
        title=doc.title,
        section=section,
        start=start,
        end=end,
        text=passage,
    )


def embedding_text(chunk: Chunk) -> str:
    """What the embedding model sees: the passage with its document title and section, since a
    paragraph alone ("Requests take two days.") often does not say what it is about."""
    context = chunk.title
    if chunk.section and chunk.section != chunk.title:
        context = f"{chunk.title} — {chunk.section}" if chunk.title else chunk.section
    return f"{context}: {chunk.text}" if context else chunk.text
