"""Build a dialog runtime app in-process on a real region database, for integration tests."""

from __future__ import annotations

from fastapi import FastAPI
from sqlalchemy import Engine

from switchyard import __version__
from switchyard.api.auth import TokenTable
from switchyard.dialog.app import create_runtime_app
from switchyard.dialog.embedding import MiniLmEmbedder
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
) -> FastAPI:
    metrics = ApiMetrics.create(__version__)
    runtime = DialogRuntime(
        region=region,
        engine=engine,
        embedder=embedder,
        index=LiveIndex(index, store),
        retriever=Retriever(embedder),
        classifier=IntentClassifier(DEFAULT_INTENTS, embedder.embed),
        manager=DialogManager(),
        tools=ToolRegistry(tools or []),
        metrics=DialogMetrics.create(metrics.registry),
        llm=llm,
    )
    table = TokenTable.from_secret("test", {k: Secret(v) for k, v in TOKENS.items()})
    return create_runtime_app(runtime, table, metrics)
