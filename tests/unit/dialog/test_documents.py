"""Loading documents: each supported type becomes plain text with paragraphs; others refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from support.dialog import minimal_pdf
from switchyard.dialog.documents import (
    UnsupportedDocumentError,
    check_doc_id,
    load_corpus,
    load_document,
    media_type_for,
)

HTML = b"""<!doctype html><html><head><title>Remote  work</title>
<style>p { color: red }</style><script>var secret = "do not index";</script></head>
<body><h1>Remote work</h1><p>You may work from home
two days a week.</p><ul><li>Ask your manager</li><li>Use the VPN</li></ul>
<table><tr><th>Day</th><td>Monday</td></tr></table></body></html>"""


def test_html_keeps_visible_text_and_headings_and_skips_scripts_and_styles() -> None:
    doc = load_document("handbook/remote.html", HTML, "text/html")

    assert doc.title == "Remote work"
    assert "# Remote work" in doc.text
    assert "You may work from home two days a week." in doc.text
    assert "- Ask your manager" in doc.text
    assert "do not index" not in doc.text
    assert "color" not in doc.text


def test_markdown_title_is_the_first_heading_and_paragraphs_are_kept() -> None:
    raw = b"# Vacation\r\n\r\n\r\n\r\nYou get 25 days.   \r\n\r\n## Carry over\r\nUp to 5.\r\n"
    doc = load_document("handbook/vacation.md", raw, "text/markdown")

    assert doc.title == "Vacation"
    assert doc.text == "# Vacation\n\nYou get 25 days.\n\n## Carry over\nUp to 5.\n"
    assert len(doc.sha256) == 64


def test_pdf_text_is_extracted() -> None:
    pdf = minimal_pdf(["Badge policy", "Lost badges cost 25 dollars to replace."])

    doc = load_document("facilities/badges.pdf", pdf, "application/pdf")

    assert "Lost badges cost 25 dollars to replace." in doc.text
    assert doc.title == "Badge policy"


@pytest.mark.parametrize(
    ("data", "media_type", "problem"),
    [
        (b"\xff\xfe\x00broken", "text/plain", "UTF-8"),
        (b"not a pdf at all", "application/pdf", "PDF"),
        (b"   \n\n  ", "text/markdown", "no text"),
        (b"hello", "application/msword", "unsupported media type"),
    ],
)
def test_unreadable_documents_are_refused_naming_the_problem(
    data: bytes, media_type: str, problem: str
) -> None:
    with pytest.raises(UnsupportedDocumentError, match=problem):
        load_document("x/doc", data, media_type)


def test_media_type_by_extension() -> None:
    assert media_type_for("a/b.MD") == "text/markdown"
    assert media_type_for("page.htm") == "text/html"
    with pytest.raises(UnsupportedDocumentError, match=r"\.docx"):
        media_type_for("report.docx")


@pytest.mark.parametrize("bad", ["../etc/passwd", "/abs.md", "a//b.md", "a/./b.md", "a b.md", ""])
def test_document_ids_must_be_safe_relative_paths(bad: str) -> None:
    with pytest.raises(ValueError, match="document id"):
        check_doc_id(bad)


def test_corpus_loads_every_supported_file_by_relative_id(tmp_path: Path) -> None:
    (tmp_path / "it").mkdir()
    (tmp_path / "it" / "vpn.md").write_text("# VPN\n\nUse NWConnect.\n")
    (tmp_path / "notes.txt").write_text("Notes\n\nSome text.\n")
    (tmp_path / "README.md").write_text("# About this folder\n")
    (tmp_path / "logo.png").write_bytes(b"\x89PNG")

    docs = load_corpus(tmp_path)

    assert [d.doc_id for d in docs] == ["it/vpn.md", "notes.txt"]


def test_the_demo_corpus_loads() -> None:
    docs = load_corpus(Path(__file__).resolve().parents[3] / "corpus" / "demo")

    assert len(docs) >= 30
    assert {d.media_type for d in docs} == {"text/markdown", "text/plain", "text/html"}
