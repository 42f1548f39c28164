"""Build a dialog runtime app in-process on a real region database, for integration tests."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from fastapi import FastAPI
from sqlalchemy import Engine

from switchyard import __version__
from switchyard.api.auth import TokenTable
from switchyard.dialog.admission import ServingLimits
from switchyard.dialog.app import create_runtime_app
from switchyard.dialog.chunking import CHUNKER_VERSION
from switchyard.dialog.embedding import MiniLmEmbedder
from switchyard.dialog.golden import load_golden
from switchyard.dialog.index import SearchIndex
from switchyard.dialog.intents import DEFAULT_INTENTS, IntentClassifier
from switchyard.dialog.live_index import LiveIndex
from switchyard.dialog.llm import LlmGateway
from switchyard.dialog.manager import DialogManager
from switchyard.dialog.retrieval import Retriever
from switchyard.dialog.runtime import DialogRuntime
from switchyard.dialog.store import IndexStore
from switchyard.dialog.tools import ToolHandler, ToolRegistry
from switchyard.domain.secrets import Secret
from switchyard.observability.metrics import ApiMetrics, DialogMetrics
from switchyard.ports.objects import ObjectStore
from switchyard.snapshots.gate import golden_gate
from switchyard.snapshots.restore import live_restorer

GOLDEN = Path(__file__).resolve().parents[2] / "corpus" / "golden" / "questions-v1.yaml"

TOKENS = {
    "viewer": "viewer-token-0123456789",
    "operator": "operator-token-0123456789",
}


def auth(role: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {TOKENS[role]}"}


def runtime_app(
    engine: Engine,
    embedder: MiniLmEmbedder,
    index: SearchIndex,
    *,
    region: str = "region-a",
    tools: list[ToolHandler] | None = None,
    llm: LlmGateway | None = None,
    store: IndexStore | None = None,
    snapshots: ObjectStore | None = None,
    limits: ServingLimits | None = None,
) -> FastAPI:
    """``snapshots``: the region's bucket; restores are gated by the demo golden questions.
    ``limits``: the runtime's lanes (default: ``ServingLimits()``, what settings default to)."""
    metrics = ApiMetrics.create(__version__)
    live = LiveIndex(index, store)
    runtime = DialogRuntime(
        region=region,
        engine=engine,
        embedder=embedder,
        index=live,
        retriever=Retriever(embedder),
        classifier=IntentClassifier(DEFAULT_INTENTS, embedder.embed),
        manager=DialogManager(),
        tools=ToolRegistry(tools or []),
        metrics=DialogMetrics.create(metrics.registry),
        llm=llm,
        limits=limits,
    )
    table = TokenTable.from_secret("test", {k: Secret(v) for k, v in TOKENS.items()})
    restorer = None
    if snapshots is not None:
        restorer = live_restorer(
            live,
            snapshots,
            region=region,
            model_id=embedder.model_id,
            chunker_version=CHUNKER_VERSION,
            gate=golden_gate(load_golden(GOLDEN), runtime.retriever),
            now=lambda: datetime.now(UTC),
        )
    return create_runtime_app(runtime, table, metrics, restorer)
