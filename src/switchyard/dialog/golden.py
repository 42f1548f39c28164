"""Golden questions: a versioned file of questions and the documents they must cite, and the
pure scoring of answers against it (used by ``switchyard eval`` and by any gate that must
prove an index answers correctly before it goes live).

File format (YAML)::

    version: 1                      # bump when questions or expectations change
    corpus: demo
    questions:
      - id: q001
        question: How many days of paid vacation ...?
        expect_documents: [handbook/vacation-and-leave.md]
      - id: n001                    # out of scope: the right answer is "not found"
        question: What is the boiling point of tungsten?
        expect_documents: []
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from switchyard.config_errors import config_error
from switchyard.errors import ConfigError

RECALL_AT = 5


class GoldenQuestion(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=r"^[A-Za-z0-9_-]{1,40}$")
    question: str = Field(min_length=3, max_length=500)
    expect_documents: tuple[str, ...] = ()

    @property
    def answerable(self) -> bool:
        return bool(self.expect_documents)


class GoldenSet(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    version: int = Field(ge=1)
    corpus: str
    questions: tuple[GoldenQuestion, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique_ids(self) -> GoldenSet:
        seen: set[str] = set()
        for i, q in enumerate(self.questions):
            if q.id in seen:
                raise ValueError(f"questions[{i}].id: duplicate id {q.id!r}")
            seen.add(q.id)
        return self


def load_golden(path: Path) -> GoldenSet:
    """Parse and validate a golden file; ConfigError names the file and the field."""
    try:
        raw = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise ConfigError(str(path), "(file)", f"cannot read: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark is not None else "(file)"
        raise ConfigError(str(path), where, "not valid YAML") from None
    try:
        return GoldenSet.model_validate(raw)
    except ValidationError as exc:
        raise config_error(str(path), exc) from None


@dataclass(frozen=True, slots=True)
class Outcome:
    """What the system under test did for one question."""

    question_id: str
    retrieved_documents: tuple[str, ...]  # in rank order, de-duplicated
    cited_documents: tuple[str, ...]
    not_found: bool
    latency_ms: float


@dataclass(frozen=True, slots=True)
class EvalReport:
    golden_version: int
    answerable: int
    out_of_scope: int
    recall_at_5: float  # answerable questions with an expected document in the top 5
    citation_accuracy: float  # answerable questions citing only, and at least one, expected
    abstention_accuracy: float  # out-of-scope questions answered "not found"
    latency_p50_ms: float
    latency_p95_ms: float
    latency_p99_ms: float
    misses: tuple[str, ...]  # ids of questions that failed recall, citation or abstention


def score(golden: GoldenSet, outcomes: Sequence[Outcome]) -> EvalReport:
    by_id = {o.question_id: o for o in outcomes}
    missing = [q.id for q in golden.questions if q.id not in by_id]
    if missing:
        raise ValueError(f"no outcome for questions {', '.join(missing)}")
    recalled = cited = abstained = 0
    misses: list[str] = []
    answerable = [q for q in golden.questions if q.answerable]
    out_of_scope = [q for q in golden.questions if not q.answerable]
    for q in answerable:
        o = by_id[q.id]
        expected = set(q.expect_documents)
        hit = bool(expected & set(o.retrieved_documents[:RECALL_AT]))
        good_citation = bool(o.cited_documents) and set(o.cited_documents) <= expected
        recalled += hit
        cited += good_citation
        if not (hit and good_citation):
            misses.append(q.id)
    for q in out_of_scope:
        o = by_id[q.id]
        abstained += o.not_found
        if not o.not_found:
            misses.append(q.id)
    latencies = sorted(by_id[q.id].latency_ms for q in golden.questions)
    return EvalReport(
        golden_version=golden.version,
        answerable=len(answerable),
        out_of_scope=len(out_of_scope),
        recall_at_5=_ratio(recalled, len(answerable)),
        citation_accuracy=_ratio(cited, len(answerable)),
        abstention_accuracy=_ratio(abstained, len(out_of_scope)),
        latency_p50_ms=percentile(latencies, 50),
        latency_p95_ms=percentile(latencies, 95),
        latency_p99_ms=percentile(latencies, 99),
        misses=tuple(misses),
    )


def percentile(sorted_values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile of already sorted values (0 for none)."""
    if not sorted_values:
        return 0.0
    rank = max(1, math.ceil(p / 100 * len(sorted_values)))
    return round(sorted_values[rank - 1], 3)


def _ratio(n: int, d: int) -> float:
    return round(n / d, 4) if d else 1.0
