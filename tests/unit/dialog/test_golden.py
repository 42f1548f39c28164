"""Golden files are validated on load, and answers are scored against them."""

from __future__ import annotations

from pathlib import Path

import pytest

from switchyard.dialog.golden import GoldenSet, Outcome, load_golden, percentile, score
from switchyard.errors import ConfigError

REPO = Path(__file__).resolve().parents[3]


def test_the_shipped_golden_file_is_valid_and_names_existing_documents() -> None:
    golden = load_golden(REPO / "corpus" / "golden" / "questions-v1.yaml")

    assert golden.version >= 1
    documents = {d for q in golden.questions for d in q.expect_documents}
    assert documents
    assert all((REPO / "corpus" / "demo" / d).is_file() for d in documents)
    assert any(not q.answerable for q in golden.questions)


def test_invalid_golden_files_name_the_field(tmp_path: Path) -> None:
    path = tmp_path / "golden.yaml"
    path.write_text(
        "version: 1\ncorpus: demo\nquestions:\n  - id: q1\n    question: hi?\n"
        "    expect_documents: [a.md]\n  - id: q1\n    question: again?\n"
    )
    with pytest.raises(ConfigError, match="duplicate id"):
        load_golden(path)

    path.write_text("version: 0\ncorpus: demo\nquestions: []\n")
    with pytest.raises(ConfigError, match="version"):
        load_golden(path)


GOLDEN = GoldenSet.model_validate(
    {
        "version": 3,
        "corpus": "t",
        "questions": [
            {"id": "a", "question": "aaa?", "expect_documents": ["x.md"]},
            {"id": "b", "question": "bbb?", "expect_documents": ["y.md"]},
            {"id": "n", "question": "nnn?", "expect_documents": []},
        ],
    }
)


def test_score_counts_recall_citations_and_abstentions() -> None:
    report = score(
        GOLDEN,
        [
            Outcome("a", ("z.md", "x.md"), ("x.md",), False, 10.0),  # recalled, cited right
            Outcome("b", ("z.md",), ("z.md",), False, 20.0),  # missed both
            Outcome("n", ("z.md",), (), True, 30.0),  # rightly abstained
        ],
    )

    assert report.golden_version == 3
    assert report.recall_at_5 == 0.5
    assert report.citation_accuracy == 0.5
    assert report.abstention_accuracy == 1.0
    assert report.misses == ("b",)
    assert (report.latency_p50_ms, report.latency_p99_ms) == (20.0, 30.0)


def test_recall_only_counts_the_top_five_and_wrong_extra_citations_fail() -> None:
    report = score(
        GOLDEN,
        [
            Outcome("a", ("1", "2", "3", "4", "5", "x.md"), ("x.md", "z.md"), False, 1.0),
            Outcome("b", ("y.md",), ("y.md",), False, 1.0),
            Outcome("n", (), ("x.md",), False, 1.0),
        ],
    )

    assert report.recall_at_5 == 0.5
    assert report.citation_accuracy == 0.5
    assert report.abstention_accuracy == 0.0


def test_every_question_needs_an_outcome() -> None:
    with pytest.raises(ValueError, match="no outcome for questions b, n"):
        score(GOLDEN, [Outcome("a", (), (), True, 1.0)])


def test_percentile_is_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 50) == 50.0
    assert percentile(values, 95) == 95.0
    assert percentile([], 50) == 0.0
