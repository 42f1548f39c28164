"""The LLM gateway against a local OpenAI-compatible fake: HTTP contract, bounds, failures.

No pytest-asyncio: each test drives its coroutine with ``asyncio.run``, and builds its gateway
inside that loop (a gateway stays bound to the loop that first used it).
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Awaitable, Callable
from typing import TypeVar

import httpx
import pytest

from support.fake_llm import FakeLlm
from switchyard.dialog.llm import LlmBusy, LlmFailure, LlmGateway, LlmSettings, LlmUnavailable
from switchyard.dialog.model import AnswerKind, Chunk, Hit
from switchyard.dialog.prompt import ChatMessage, Completion, build_messages, generated_answer
from switchyard.domain.secrets import Secret

T = TypeVar("T")

API_KEY = "sk-test-very-secret-key-0123456789"
QUESTION = "What is the secret-question-marker for the VPN?"
MESSAGES = [ChatMessage("system", "Be brief."), ChatMessage("user", QUESTION)]


def _settings(base_url: str, **overrides: object) -> LlmSettings:
    # A short request timeout, so a regression that lets a held request through fails fast.
    defaults: dict[str, object] = {"base_url": base_url, "model": "test-model"}
    values = defaults | {"request_timeout_seconds": 5.0} | overrides
    return LlmSettings(**values)  # type: ignore[arg-type]


def _run(settings: LlmSettings, use: Callable[[LlmGateway], Awaitable[T]]) -> T:
    async def main() -> T:
        gateway = LlmGateway(settings)
        try:
            return await use(gateway)
        finally:
            await gateway.aclose()

    return asyncio.run(main())


def _complete(settings: LlmSettings) -> Completion:
    return _run(settings, lambda gw: gw.complete(MESSAGES))


def _hit(n: int) -> Hit:
    text = f"Passage {n} says something."
    chunk = Chunk(f"c{n}", f"doc{n}.md", f"Doc {n}", "", 10 * n, 10 * n + len(text), text)
    return Hit(chunk=chunk, score=1.0 / n, similarity=None, bm25=None)


def _refused_url() -> str:
    """A local URL where nothing listens (a port just released by the OS)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"


# --- the HTTP contract -------------------------------------------------------------------------


def test_request_has_openai_shape_and_bearer_key() -> None:
    with FakeLlm(reply="Use the portal [1].") as llm:
        settings = _settings(llm.base_url, api_key=Secret(API_KEY), max_tokens=123)
        _complete(settings)
        (request,) = llm.requests

    assert request.path == "/v1/chat/completions"
    assert request.headers["authorization"] == f"Bearer {API_KEY}"
    assert request.body == {
        "model": "test-model",
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": QUESTION},
        ],
        "temperature": 0.0,
        "max_tokens": 123,
    }


def test_no_authorization_header_without_a_key() -> None:
    with FakeLlm() as llm:
        _complete(_settings(llm.base_url))
        (request,) = llm.requests
    assert "authorization" not in request.headers


def test_completion_carries_text_model_and_usage() -> None:
    with FakeLlm(reply="Use the portal [1].", model="served-model") as llm:
        completion = _complete(_settings(llm.base_url))

    assert completion.text == "Use the portal [1]."
    assert completion.model == "served-model"
    assert (completion.prompt_tokens, completion.completion_tokens) == (42, 7)
    assert completion.queue_ms >= 0
    assert completion.llm_ms > 0


def test_reply_without_usage_or_model_still_parses() -> None:
    body = b'{"choices": [{"message": {"role": "assistant", "content": "ok"}}]}'
    with FakeLlm(raw_body=body) as llm:
        completion = _complete(_settings(llm.base_url))
    assert completion.text == "ok"
    assert completion.model == "test-model"
    assert completion.prompt_tokens is None


def test_generated_answer_cites_the_sources_the_model_named() -> None:
    hits = [_hit(1), _hit(2), _hit(3)]
    with FakeLlm(reply="First [2], then [1], not [7].") as llm:
        settings = _settings(llm.base_url)
        completion = _run(settings, lambda gw: gw.complete(build_messages("How?", hits)))
        sent = llm.requests[0].body["messages"][1]["content"]

    answer = generated_answer(completion, hits, confidence=0.8)
    assert "[1]" in sent
    assert "doc3.md" in sent
    assert answer.kind is AnswerKind.GENERATED
    assert answer.text == "First [2], then [1], not [7]."
    assert [c.chunk_id for c in answer.citations] == ["c2", "c1"]


# --- bounded concurrency -----------------------------------------------------------------------


def test_concurrency_never_exceeds_the_bound_and_everyone_is_served() -> None:
    with FakeLlm(hold=True) as llm:
        settings = _settings(llm.base_url, max_concurrency=4, queue_timeout_seconds=5.0)

        async def use(gw: LlmGateway) -> tuple[list[Completion], tuple[int, int]]:
            tasks = [asyncio.create_task(gw.complete(MESSAGES)) for _ in range(10)]
            await asyncio.to_thread(llm.wait_for_active, 4)
            await asyncio.sleep(0.05)  # room for a fifth request to arrive, were one let through
            seen = (gw.in_flight, gw.waiting)
            llm.release()
            return await asyncio.gather(*tasks), seen

        completions, (in_flight, waiting) = _run(settings, use)
        assert llm.max_active == 4
        assert len(llm.requests) == 10

    assert (in_flight, waiting) == (4, 6)
    assert len(completions) == 10


def test_concurrency_bound_holds_with_a_slow_server() -> None:
    with FakeLlm(delay=0.2) as llm:
        settings = _settings(llm.base_url, max_concurrency=4)

        async def use(gw: LlmGateway) -> list[Completion]:
            return await asyncio.gather(*(gw.complete(MESSAGES) for _ in range(10)))

        completions = _run(settings, use)
        assert 1 <= llm.max_active <= 4

    assert len(completions) == 10
    # Six calls had to queue behind the first four.
    assert max(c.queue_ms for c in completions) > 0


def test_waiting_past_the_queue_timeout_is_busy_with_retry_after() -> None:
    with FakeLlm(hold=True) as llm:
        settings = _settings(llm.base_url, max_concurrency=1, queue_timeout_seconds=0.1)

        async def use(gw: LlmGateway) -> tuple[LlmBusy, Completion, int]:
            first = asyncio.create_task(gw.complete(MESSAGES))
            await asyncio.to_thread(llm.wait_for_active, 1)
            with pytest.raises(LlmBusy) as caught:
                await gw.complete(MESSAGES)
            waiting_after = gw.waiting
            llm.release()
            return caught.value, await first, waiting_after

        busy, first, waiting_after = _run(settings, use)

    assert busy.retry_after_seconds >= 1
    assert "busy" in str(busy)
    assert waiting_after == 0
    assert first.text  # the request holding the slot was unaffected
    assert len(llm.requests) == 1  # the busy request never reached the server


# --- failures ----------------------------------------------------------------------------------


def test_server_error_is_unavailable_naming_the_status() -> None:
    with FakeLlm(status=500) as llm, pytest.raises(LlmUnavailable) as caught:
        _complete(_settings(llm.base_url))
    assert caught.value.reason is LlmFailure.HTTP_STATUS
    assert caught.value.http_status == 500
    assert "500" in str(caught.value)


def test_connection_refused_is_unavailable() -> None:
    with pytest.raises(LlmUnavailable) as caught:
        _complete(_settings(_refused_url()))
    assert caught.value.reason is LlmFailure.CONNECT


def test_body_that_is_not_json_is_unavailable() -> None:
    with FakeLlm(malformed=True) as llm, pytest.raises(LlmUnavailable) as caught:
        _complete(_settings(llm.base_url))
    assert caught.value.reason is LlmFailure.MALFORMED


def test_json_without_choices_is_unavailable() -> None:
    body = b'{"object": "chat.completion", "choices": []}'
    with FakeLlm(raw_body=body) as llm, pytest.raises(LlmUnavailable) as caught:
        _complete(_settings(llm.base_url))
    assert caught.value.reason is LlmFailure.MALFORMED
    assert "choices" in str(caught.value)


def test_slow_reply_times_out_as_unavailable_and_frees_the_slot() -> None:
    with FakeLlm(hold=True) as llm:
        settings = _settings(llm.base_url, max_concurrency=1, request_timeout_seconds=0.2)

        async def use(gw: LlmGateway) -> tuple[LlmUnavailable, int]:
            with pytest.raises(LlmUnavailable) as caught:
                await gw.complete(MESSAGES)
            return caught.value, gw.in_flight

        error, in_flight = _run(settings, use)
    assert error.reason is LlmFailure.TIMEOUT
    assert in_flight == 0


def test_gateway_refuses_a_second_event_loop() -> None:
    with FakeLlm() as llm:

        async def first() -> LlmGateway:
            async with httpx.AsyncClient() as client:
                gateway = LlmGateway(_settings(llm.base_url), client)
                await gateway.complete(MESSAGES)
                return gateway

        gateway = asyncio.run(first())
        with pytest.raises(RuntimeError, match="event loop"):
            asyncio.run(gateway.complete(MESSAGES))
        assert len(llm.requests) == 1


# --- what never leaks --------------------------------------------------------------------------


def test_key_and_prompt_stay_out_of_errors_and_logs(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    errors: list[Exception] = []
    key = {"api_key": Secret(API_KEY)}

    with FakeLlm(status=500) as llm, pytest.raises(LlmUnavailable) as caught:
        _complete(_settings(llm.base_url, **key))
    errors.append(caught.value)
    with FakeLlm(malformed=True) as llm, pytest.raises(LlmUnavailable) as caught:
        _complete(_settings(llm.base_url, **key))
    errors.append(caught.value)
    with pytest.raises(LlmUnavailable) as caught:
        _complete(_settings(_refused_url(), **key))
    errors.append(caught.value)
    with FakeLlm(hold=True) as llm:
        settings = _settings(llm.base_url, max_concurrency=1, queue_timeout_seconds=0.05, **key)

        async def use(gw: LlmGateway) -> None:
            first = asyncio.create_task(gw.complete(MESSAGES))
            await asyncio.to_thread(llm.wait_for_active, 1)
            with pytest.raises(LlmBusy) as busy:
                await gw.complete(MESSAGES)
            errors.append(busy.value)
            llm.release()
            await first

        _run(settings, use)

    calls = [r for r in caplog.records if r.getMessage() == "llm.call"]
    statuses = [r.fields["status"] for r in calls]  # type: ignore[attr-defined]
    assert statuses == ["http_status", "malformed", "connect", "busy", "ok"]
    assert len(errors) == 4
    for error in errors:
        rendered = f"{error!s} {error!r} {error.__cause__!r} {error.__context__!r}"
        assert API_KEY not in rendered
        assert "secret-question-marker" not in rendered
    assert API_KEY not in caplog.text
    for record in calls:
        fields = record.fields  # type: ignore[attr-defined]
        assert API_KEY not in repr(fields)
        assert "secret-question-marker" not in repr(fields)
