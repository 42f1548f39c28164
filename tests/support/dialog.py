"""Helpers for dialog runtime tests: a tiny deterministic embedder, a PDF writer, fixtures'
building blocks for a runtime on a real region database."""

from __future__ import annotations

import hashlib
import re
import zlib
from collections.abc import Sequence

import numpy as np

from switchyard.dialog.embedding import Vectors
from switchyard.dialog.index import tokenize
from switchyard.dialog.model import Document


class HashEmbedder:
    """Bag-of-words vectors from hashed terms, L2-normalised: texts sharing terms are similar.

    A stand-in for unit tests of code that only needs *some* embedding with that property
    (index storage, fusion); everything about retrieval quality is tested with the real model.
    """

    def __init__(self, dimension: int = 64, model_id: str = "test/hash-embedder") -> None:
        self._dimension = dimension
        self._model_id = model_id
        self.embedded = 0  # texts embedded so far, to prove reuse of cached vectors

    @property
    def model_id(self) -> str:
        return self._model_id

    @property
    def dimension(self) -> int:
        return self._dimension

    def embed(self, texts: Sequence[str]) -> Vectors:
        self.embedded += len(texts)
        out = np.zeros((len(texts), self._dimension), dtype=np.float32)
        for row, text in enumerate(texts):
            for term in tokenize(text) or ["<empty>"]:
                slot = int(hashlib.sha256(term.encode()).hexdigest(), 16) % self._dimension
                out[row, slot] += 1.0
            out[row] /= np.linalg.norm(out[row])
        return out


BAG_OF_WORDS_DIMENSION = 256


def bag_of_words_embed(texts: Sequence[str]) -> Vectors:
    """A deterministic stand-in for the sentence model, for the intent classifier's unit tests:
    hashed bag of words (every word, no stemming), L2-normalised."""
    rows = np.zeros((len(texts), BAG_OF_WORDS_DIMENSION), dtype=np.float32)
    for i, text in enumerate(texts):
        for word in re.findall(r"[a-z0-9]+", text.lower()):
            rows[i, zlib.crc32(word.encode()) % BAG_OF_WORDS_DIMENSION] += 1.0
        norm = float(np.linalg.norm(rows[i]))
        if norm:
            rows[i] /= norm
    return rows


def minimal_pdf(lines: Sequence[str]) -> bytes:
    """A valid one-page PDF showing ``lines`` in Helvetica (ASCII only), built by hand so the
    tests need no PDF writer library."""
    escaped = [re.sub(r"([\\()])", r"\\\1", line) for line in lines]
    ops = ["BT", "/F1 12 Tf", "72 720 Td", "14 TL"]
    for line in escaped:
        ops.append(f"({line}) Tj T*")
    ops.append("ET")
    stream = "\n".join(ops).encode("latin-1")
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
        b"/Contents 4 0 R /Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    for offset in offsets:
        out += b"%010d 00000 n \n" % offset
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref,
    )
    return bytes(out)


def numbered_docs(n: int, salt: str = "", words: int = 0) -> list[Document]:
    """``doc0.md`` … ``doc<n-1>.md``, each about its own topic; ``salt`` changes every text
    (and sha256), so the same ids with another salt replace them; ``words`` pads each text."""
    filler = "".join(f" word{j}" for j in range(words))
    return [
        Document(
            f"doc{i}.md",
            f"Doc {i}",
            f"# Doc {i}\n\nTopic {i} {salt} explains rule number {i}.{filler}\n\nMore about {i}.\n",
            "text/markdown",
            f"{i}{salt}".ljust(64, "0"),
        )
        for i in range(n)
    ]
