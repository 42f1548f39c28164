"""The runtime with an OpenAI-compatible endpoint configured (a local fake server: only the
HTTP contract is under test): generated answers keep citations, a full queue is a 503 with
Retry-After, and a failing endpoint falls back to the extractive answer."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from fastapi.testclient import TestClient
from sqlalchemy import Engine

from support.fake_llm import FakeLlm
from support.runtime import runtime_app
from switchyard.dialog.embedding import MiniLmEmbedder
from switchyard.dialog.index import SearchIndex
from switchyard.dialog.llm import LlmGateway, LlmSettings

QUESTION = "How many days of paid vacation do I get each year?"


def test_generated_answers_cite_the_sources_the_model_named(
    region_store: Engine, minilm: MiniLmEmbedder, demo_index: SearchIndex
) -> None:
    with FakeLlm(reply="You get 25 days of paid vacation a year [1].") as llm:
        gateway = LlmGateway(LlmSettings(base_url=llm.base_url, model="fake"))
        with TestClient(runtime_app(region_store, minilm, demo_index, llm=gateway)) as client:
            body = client.post("/v1/chat", json={"message": QUESTION}).json()
        sent = llm.requests[0].body

    assert body["kind"] == "generated"
    assert body["answer"] == "You get 25 days of paid vacation a year [1]."
    assert [c["document"] for c in body["citations"]] == ["handbook/vacation-and-leave.md"]
    assert sent["model"] == "fake"
    assert QUESTION in sent["messages"][-1]["content"]


def test_out_of_scope_questions_never_reach_the_model(
    region_store: Engine, minilm: MiniLmEmbedder, demo_index: SearchIndex
) -> None:
    with FakeLlm(reply="Made up [1].") as llm:
        gateway = LlmGateway(LlmSettings(base_url=llm.base_url, model="fake"))
        with TestClient(runtime_app(region_store, minilm, demo_index, llm=gateway)) as client:
            body = client.post("/v1/chat", json={"message": "Who painted the Mona Lisa?"}).json()
        calls = len(llm.requests)

    assert body["kind"] == "not_found"
    assert calls == 0


def test_a_full_queue_answers_503_with_retry_after(
    region_store: Engine, minilm: MiniLmEmbedder, demo_index: SearchIndex
) -> None:
    with FakeLlm(reply="Slow [1].", hold=True) as llm:
        settings = LlmSettings(
            base_url=llm.base_url, model="fake", max_concurrency=1, queue_timeout_seconds=0.5
        )
        gateway = LlmGateway(settings)
        with TestClient(runtime_app(region_store, minilm, demo_index, llm=gateway)) as client:

            def first() -> int:
                return client.post("/v1/chat", json={"message": QUESTION}).status_code

            with ThreadPoolExecutor(1) as pool:
                holder = pool.submit(first)
                llm.wait_for_active(1)
                busy = client.post("/v1/chat", json={"message": QUESTION})
                llm.release()
                assert holder.result(timeout=10) == 200

    assert busy.status_code == 503
    assert busy.json()["code"] == "llm_busy"
    assert busy.headers["Retry-After"] == "1"


def test_a_failing_endpoint_falls_back_to_the_extractive_answer(
    region_store: Engine, minilm: MiniLmEmbedder, demo_index: SearchIndex
) -> None:
    with FakeLlm(status=500) as llm:
        gateway = LlmGateway(LlmSettings(base_url=llm.base_url, model="fake"))
        with TestClient(runtime_app(region_store, minilm, demo_index, llm=gateway)) as client:
            r = client.post("/v1/chat", json={"message": QUESTION})

    assert r.status_code == 200
    assert r.json()["kind"] == "extractive"
    assert r.json()["citations"]
