"""``switchyard eval``: ask the golden questions and print how well they were answered.

Two targets: a running runtime (``--url``, through its canary endpoint, which writes no
session) or an index built in this process from a corpus folder (``--corpus``).
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING

import httpx

from switchyard.dialog.golden import EvalReport, GoldenSet, Outcome, load_golden, score
from switchyard.errors import TransientError

if TYPE_CHECKING:
    from switchyard.dialog.index import SearchIndex
    from switchyard.dialog.retrieval import Retriever

DEFAULT_GOLDEN = Path("corpus/golden/questions-v1.yaml")
DEFAULT_CORPUS = Path("corpus/demo")

Ask = Callable[[str, str], Outcome]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    target = parser.add_mutually_exclusive_group()
    target.add_argument("--url", help="a running runtime, e.g. http://127.0.1.1:25491")
    target.add_argument(
        "--corpus",
        type=Path,
        help=f"build an index from this folder here (default {DEFAULT_CORPUS} without --url)",
    )
    parser.add_argument("--golden", type=Path, default=DEFAULT_GOLDEN, help="golden file")
    parser.add_argument(
        "--min-recall",
        type=float,
        default=0.9,
        help="exit 1 when recall@5 is below this (default 0.9)",
    )
    parser.add_argument("--json", action="store_true", help="print the report as JSON")


def run_eval(args: argparse.Namespace) -> int:
    golden = load_golden(args.golden)
    ask = remote_asker(args.url) if args.url else local_asker(args.corpus or DEFAULT_CORPUS)
    report = evaluate(golden, ask)
    if args.json:
        print(json.dumps(asdict(report), indent=2))
    else:
        print(format_report(report, target=args.url or str(args.corpus or DEFAULT_CORPUS)))
    return 0 if report.recall_at_5 >= args.min_recall else 1


def evaluate(golden: GoldenSet, ask: Ask) -> EvalReport:
    return score(golden, [ask(q.id, q.question) for q in golden.questions])


def remote_asker(base_url: str, *, timeout_seconds: float = 10.0) -> Ask:
    client = httpx.Client(base_url=base_url.rstrip("/"), timeout=timeout_seconds)

    def ask(question_id: str, question: str) -> Outcome:
        start = time.perf_counter()
        try:
            response = client.get("/v1/canary", params={"q": question})
        except httpx.HTTPError as exc:
            raise TransientError(f"runtime at {base_url} unreachable: {exc}") from None
        elapsed = (time.perf_counter() - start) * 1000
        if response.status_code != 200:
            raise TransientError(f"runtime at {base_url} answered {response.status_code}")
        body = response.json()
        return Outcome(
            question_id,
            tuple(body["retrieved_documents"]),
            tuple(body["cited_documents"]),
            body["kind"] == "not_found",
            elapsed,
        )

    return ask


def local_asker(corpus: Path) -> Ask:
    from switchyard.dialog.documents import load_corpus
    from switchyard.dialog.embedding import MiniLmEmbedder
    from switchyard.dialog.index import build_index
    from switchyard.dialog.retrieval import Retriever

    embedder = MiniLmEmbedder()
    return index_asker(build_index(load_corpus(corpus), embedder), Retriever(embedder))


def index_asker(index: SearchIndex, retriever: Retriever) -> Ask:
    """Ask ``index`` directly (a staged snapshot before it goes live, an index built here)."""
    from switchyard.dialog.answering import extractive_answer
    from switchyard.dialog.model import AnswerKind

    def ask(question_id: str, question: str) -> Outcome:
        start = time.perf_counter()
        retrieval = retriever.retrieve(index, question)
        answer = extractive_answer(question, retrieval)
        elapsed = (time.perf_counter() - start) * 1000
        return Outcome(
            question_id,
            retrieval.documents,
            answer.cited_documents,
            answer.kind is AnswerKind.NOT_FOUND,
            elapsed,
        )

    return ask


def format_report(r: EvalReport, *, target: str) -> str:
    lines = [
        f"golden questions v{r.golden_version} against {target}",
        f"  answerable {r.answerable}, out of scope {r.out_of_scope}",
        f"  recall@5             {r.recall_at_5:.3f}",
        f"  citation accuracy    {r.citation_accuracy:.3f}",
        f"  abstention accuracy  {r.abstention_accuracy:.3f}",
        f"  latency ms           p50 {r.latency_p50_ms:.1f}  p95 {r.latency_p95_ms:.1f}  "
        f"p99 {r.latency_p99_ms:.1f}",
    ]
    if r.misses:
        lines.append(f"  misses: {', '.join(r.misses)}")
    return "\n".join(lines)
