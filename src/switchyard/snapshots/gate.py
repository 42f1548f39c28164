"""The golden-question gate a restored index must pass before it goes live (pure judgement)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from switchyard.dialog.evaluation import evaluate, index_asker
from switchyard.dialog.golden import EvalReport, GoldenSet
from switchyard.dialog.index import SearchIndex
from switchyard.dialog.retrieval import Retriever


@dataclass(frozen=True, slots=True)
class GatePolicy:
    """Minimum scores on the golden questions (the demo corpus scores 1.0 on each)."""

    min_recall: float = 0.9
    min_citation: float = 0.8
    min_abstention: float = 0.75


@dataclass(frozen=True, slots=True)
class GateResult:
    passed: bool
    reason: str  # one sentence: what passed, or every threshold missed and the questions
    report: EvalReport


Gate = Callable[[SearchIndex], GateResult]


def judge(report: EvalReport, policy: GatePolicy) -> GateResult:
    scores = (
        ("recall@5", report.recall_at_5, policy.min_recall),
        ("citation accuracy", report.citation_accuracy, policy.min_citation),
        ("abstention accuracy", report.abstention_accuracy, policy.min_abstention),
    )
    failed = [f"{name} {value:.2f} < {least:.2f}" for name, value, least in scores if value < least]
    if failed:
        misses = f"; missed {', '.join(report.misses)}" if report.misses else ""
        return GateResult(False, "golden questions failed: " + ", ".join(failed) + misses, report)
    summary = ", ".join(f"{name} {value:.2f}" for name, value, _ in scores)
    return GateResult(True, f"golden questions v{report.golden_version} passed: {summary}", report)


def golden_gate(golden: GoldenSet, retriever: Retriever, policy: GatePolicy | None = None) -> Gate:
    chosen = policy or GatePolicy()

    def gate(index: SearchIndex) -> GateResult:
        return judge(evaluate(golden, index_asker(index, retriever)), chosen)

    return gate
