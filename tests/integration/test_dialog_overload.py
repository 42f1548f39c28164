"""Load must not look like death (issue 13): with every chat slot held and the chat queue full,
excess chats are refused with 503 ``overloaded`` + ``Retry-After`` and nothing else fails, while
``/healthz``, ``/readyz`` and the canary still answer 200.

The slots are held deterministically — by a fake LLM that parks every call, or by a lock on
the region's row that parks every chat's database read on its thread — never by racing a clock.
What is asserted is *that* the probes answer, not how fast (speed is ``bench/overload.py``'s).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from typing import NamedTuple

from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import Engine, text

from support.fake_llm import FakeLlm
from support.runtime import runtime_app
from switchyard.dialog.admission import LaneLimits, ServingLimits
from switchyard.dialog.embedding import MiniLmEmbedder
from switchyard.dialog.index import SearchIndex
from switchyard.dialog.llm import LlmGateway, LlmSettings

VACATION = "How many days of paid vacation do I get each year?"
# Two chats at once, two waiting; a long queue timeout so no waiter gives up during a test.
TIGHT = ServingLimits(chat=LaneLimits(max_concurrency=2, queue_size=2, queue_timeout_seconds=60))
# Only to turn a hang (the defect) into a failure; never a statement about speed.
HANG_GUARD_SECONDS = 120


def sample(client: TestClient, name: str, **labels: str) -> float:
    """One sample of the runtime's /metrics (0 when the series is absent)."""
    for family in text_string_to_metric_families(client.get("/metrics").text):
        for s in family.samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                return s.value
    return 0.0


def until(what: str, check: Callable[[], bool]) -> None:
    deadline = time.monotonic() + HANG_GUARD_SECONDS
    while not check():
        assert time.monotonic() < deadline, f"never happened: {what}"
        time.sleep(0.01)


class Reply(NamedTuple):
    status: int
    code: str | None
    retry_after: str | None
    content_type: str


def chat(client: TestClient) -> Reply:
    r = client.post("/v1/chat", json={"message": VACATION})
    code = r.json().get("code") if r.status_code >= 400 else None
    return Reply(r.status_code, code, r.headers.get("Retry-After"), r.headers["content-type"])


def assert_probes_answer(client: TestClient) -> None:
    """The three things a controller asks, asked from another thread so that a probe stuck
    behind chat fails the test instead of hanging it."""
    with ThreadPoolExecutor(1) as pool:
        health = pool.submit(client.get, "/healthz").result(HANG_GUARD_SECONDS)
        ready = pool.submit(client.get, "/readyz").result(HANG_GUARD_SECONDS)
        canary = pool.submit(client.get, "/v1/canary", params={"q": VACATION}).result(
            HANG_GUARD_SECONDS
        )
    assert health.status_code == 200
    assert ready.status_code == 200
    assert ready.json()["ready"] is True
    assert canary.status_code == 200
    assert canary.json()["cited_documents"] == ["handbook/vacation-and-leave.md"]


def assert_overloaded(r: Reply) -> None:
    assert r.status == 503
    assert r.content_type == "application/problem+json"
    assert r.code == "overloaded"
    assert r.retry_after == "60"  # one queue window (TIGHT's timeout)


def test_excess_chats_are_shed_and_probes_answer_while_every_slot_is_held(
    region_store: Engine, minilm: MiniLmEmbedder, demo_index: SearchIndex
) -> None:
    with FakeLlm(reply="You get 25 days of paid vacation a year [1].", hold=True) as llm:
        gateway = LlmGateway(LlmSettings(base_url=llm.base_url, model="fake", max_concurrency=8))
        app = runtime_app(region_store, minilm, demo_index, llm=gateway, limits=TIGHT)
        with TestClient(app) as client, ThreadPoolExecutor(4) as pool:
            admitted = [pool.submit(chat, client) for _ in range(4)]
            try:
                llm.wait_for_active(2, timeout=HANG_GUARD_SECONDS)  # both slots held in the LLM
                until("two chats queued", lambda: sample(client, QUEUED, lane="chat") == 2)

                shed = [chat(client) for _ in range(6)]
                assert_probes_answer(client)

                in_flight = sample(client, IN_FLIGHT, lane="chat")
                shed_total = sample(client, SHED, lane="chat", reason="queue_full")
            finally:
                llm.release()
            statuses = [f.result(HANG_GUARD_SECONDS).status for f in admitted]

    for r in shed:
        assert_overloaded(r)
    assert statuses == [200] * 4  # every admitted chat is answered once the LLM answers
    assert llm.max_active == 2  # never more than the lane's slots reached the model
    assert in_flight == 2
    assert shed_total == 6


def test_probes_answer_while_every_chat_thread_is_stuck_in_the_database(
    region_store: Engine, minilm: MiniLmEmbedder, demo_index: SearchIndex
) -> None:
    """Before lanes, chat shared the server's one thread pool (40 threads) with the probes:
    48 chats parked on a lock filled it, and ``/healthz`` never answered."""
    app = runtime_app(region_store, minilm, demo_index, limits=TIGHT)
    with TestClient(app) as client, ThreadPoolExecutor(48) as pool:
        with _region_row_locked(region_store):  # every chat's role read waits for this lock
            futures = [pool.submit(chat, client) for _ in range(48)]
            until("44 chats refused", lambda: _done(futures) >= 44)
            assert_probes_answer(client)
            early = [f.result() for f in futures if f.done()]
            waiting = [f for f in futures if not f.done()]
        late = [f.result(HANG_GUARD_SECONDS) for f in waiting]

    assert len(early) == 44
    for r in early:
        assert_overloaded(r)
    assert [r.status for r in late] == [200] * 4  # 2 held + 2 queued, answered after


QUEUED = "switchyard_dialog_requests_queued"
IN_FLIGHT = "switchyard_dialog_requests_in_flight"
SHED = "switchyard_dialog_requests_shed_total"


def _done(futures: list[Future[Reply]]) -> int:
    return sum(f.done() for f in futures)


@contextmanager
def _region_row_locked(engine: Engine) -> Iterator[None]:
    with engine.connect() as connection, connection.begin():
        connection.execute(text("SELECT 1 FROM region_state FOR UPDATE"))
        yield
