"""Turn document bytes (Markdown, plain text, HTML, PDF) into a ``Document`` of plain text.

Loaders keep the text a reader would see and its paragraph breaks (blank lines), because the
chunker splits on them. Markdown keeps its ``#`` heading lines: the chunker uses them as
section names. Anything else is refused with ``UnsupportedDocumentError`` naming the type.
"""

from __future__ import annotations

import hashlib
import io
import re
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path, PurePosixPath

from switchyard.dialog.model import Document
from switchyard.errors import FatalError

MEDIA_TYPES = {
    ".md": "text/markdown",
    ".markdown": "text/markdown",
    ".txt": "text/plain",
    ".html": "text/html",
    ".htm": "text/html",
    ".pdf": "application/pdf",
}
SUPPORTED_MEDIA_TYPES = frozenset(MEDIA_TYPES.values())
DOC_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9][A-Za-z0-9._-]*)*$")
MAX_DOC_ID_LENGTH = 200


class UnsupportedDocumentError(FatalError):
    """The document's type is not one we can read, or its bytes are not what the type says."""

    code = "unsupported_document"


def media_type_for(name: str) -> str:
    """The media type for a file name, by extension; ``UnsupportedDocumentError`` if unknown."""
    suffix = PurePosixPath(name).suffix.lower()
    try:
        return MEDIA_TYPES[suffix]
    except KeyError:
        known = ", ".join(sorted(MEDIA_TYPES))
        raise UnsupportedDocumentError(
            f"{name!r}: unsupported file type {suffix or '(none)'!r}; supported: {known}"
        ) from None


def check_doc_id(doc_id: str) -> str:
    """A document id is a relative POSIX path of safe segments (``it/vpn.md``)."""
    if len(doc_id) > MAX_DOC_ID_LENGTH or not DOC_ID_PATTERN.fullmatch(doc_id):
        raise ValueError(
            f"document id must be a relative path of letters, digits, '.', '_' or '-' "
            f"segments, at most {MAX_DOC_ID_LENGTH} characters"
        )
    if any(part in {".", ".."} for part in doc_id.split("/")):
        raise ValueError("document id must not contain '.' or '..' segments")
    return doc_id


def load_document(doc_id: str, data: bytes, media_type: str) -> Document:
    """Extract ``data`` as ``media_type``; the title is the first heading or first line."""
    if media_type not in SUPPORTED_MEDIA_TYPES:
        raise UnsupportedDocumentError(
            f"unsupported media type {media_type!r}; supported: "
            + ", ".join(sorted(SUPPORTED_MEDIA_TYPES))
        )
    if media_type == "application/pdf":
        text, title = _pdf_text(data), ""
    else:
        try:
            raw = data.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise UnsupportedDocumentError(f"{doc_id}: text documents must be UTF-8") from None
        if media_type == "text/html":
            text, title = _html_text(raw)
        else:
            text, title = _normalise(raw), ""
    if not text.strip():
        raise UnsupportedDocumentError(f"{doc_id}: no text could be extracted")
    return Document(
        doc_id=doc_id,
        title=title or _first_line(text) or doc_id,
        text=text,
        media_type=media_type,
        sha256=hashlib.sha256(data).hexdigest(),
    )


def load_corpus(root: Path) -> list[Document]:
    """Every supported file under ``root``, ids relative to it, in a stable (sorted) order.

    Files of other types are skipped (a corpus folder may hold a README or images).
    """
    if not root.is_dir():
        raise FileNotFoundError(f"corpus folder {root} does not exist")
    documents = []
    for path in _corpus_files(root):
        doc_id = path.relative_to(root).as_posix()
        documents.append(load_document(doc_id, path.read_bytes(), MEDIA_TYPES[path.suffix.lower()]))
    return documents


def _corpus_files(root: Path) -> Iterator[Path]:
    for path in sorted(root.rglob("*")):
        if path.is_file() and path.suffix.lower() in MEDIA_TYPES and path.name != "README.md":
            yield path


def _normalise(text: str) -> str:
    """Unix newlines, no trailing spaces, at most one blank line between paragraphs."""
    lines = [line.rstrip() for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n")]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip() + "\n"


def _first_line(text: str) -> str:
    for line in text.splitlines():
        if line.strip():
            return line.lstrip("#").strip()
    return ""


class _HtmlText(HTMLParser):
    """Collects visible text; block elements end paragraphs, headings become ``#`` lines."""

    _BLOCKS = frozenset(
        {"p", "div", "li", "ul", "ol", "table", "tr", "section", "article", "br", "h1", "h2"}
        | {"h3", "h4", "h5", "h6", "header", "footer", "main", "blockquote", "pre", "dd", "dt"}
    )
    _HIDDEN = frozenset({"script", "style", "template", "noscript", "head"})
    _HEADINGS = {"h1": "# ", "h2": "## ", "h3": "### ", "h4": "#### ", "h5": "##### "}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.title = ""
        self._hidden = 0
        self._in_title = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "title":
            self._in_title = True
        if tag in self._HIDDEN:
            self._hidden += 1
        elif tag in self._BLOCKS:
            self.parts.append("\n\n")
            self.parts.append(self._HEADINGS.get(tag, "- " if tag == "li" else ""))
        elif tag in {"td", "th"}:
            self.parts.append(" | ")

    def handle_endtag(self, tag: str) -> None:
        if tag == "title":
            self._in_title = False
        if tag in self._HIDDEN:
            self._hidden = max(0, self._hidden - 1)
        elif tag in self._BLOCKS:
            self.parts.append("\n\n")

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.title += data
        elif not self._hidden:
            self.parts.append(re.sub(r"\s+", " ", data))


def _html_text(raw: str) -> tuple[str, str]:
    parser = _HtmlText()
    parser.feed(raw)
    parser.close()
    paragraphs = (re.sub(r" +", " ", p).strip() for p in "".join(parser.parts).split("\n\n"))
    text = "\n\n".join(p for p in paragraphs if p and p not in {"-", "|"})
    return _normalise(text), " ".join(parser.title.split())


def _pdf_text(data: bytes) -> str:
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    try:
        reader = PdfReader(io.BytesIO(data))
        pages = [page.extract_text() or "" for page in reader.pages]
    except (PdfReadError, ValueError, KeyError) as exc:
        raise UnsupportedDocumentError(f"not a readable PDF ({type(exc).__name__})") from None
    return _normalise("\n\n".join(pages))
