"""The dialog runtime's HTTP API on the real region PostgreSQL and the real embedding model:
cited answers, sessions that resume, epoch fencing, the canary, documents, bad input."""

from __future__ import annotations

import base64
import json
import logging
import subprocess
import uuid
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from support.dialog import minimal_pdf
from support.runtime import auth, runtime_app
from switchyard.db.engine import unit_of_work
from switchyard.db.region_state import set_region_state
from switchyard.dialog.embedding import MiniLmEmbedder
from switchyard.dialog.index import SearchIndex
from switchyard.dialog.schemas import MAX_DOCUMENT_BYTES, MAX_MESSAGE_CHARS
from switchyard.dialog.tools import InMemoryTicketTool
from switchyard.domain.region import RegionRole

VACATION = "How many days of paid vacation do I get each year?"


@pytest.fixture
def client(
    region_store: Engine, minilm: MiniLmEmbedder, demo_index: SearchIndex
) -> Iterator[TestClient]:
    with TestClient(runtime_app(region_store, minilm, demo_index)) as c:
        yield c


def _set_role(engine: Engine, role: RegionRole, epoch: int) -> None:
    with unit_of_work(engine) as session:
        set_region_state(session=session, region="region-a", role=role, epoch=epoch, token=1)


def test_chat_answers_with_citations_into_the_documents(client: TestClient) -> None:
    r = client.post("/v1/chat", json={"message": VACATION})

    assert r.status_code == 200
    body = r.json()
    assert body["kind"] == "extractive"
    assert body["region"] == "region-a"
    assert body["epoch"] == 1
    assert body["turn"] == 2
    assert 0 < body["confidence"] <= 1
    assert body["citations"]
    for c in body["citations"]:
        assert c["document"] == "handbook/vacation-and-leave.md"
        assert (
            c["text"] in body["answer"].replace("**", "")
            or c["text"].replace("**", "") in (body["answer"])
        )
        assert c["end"] - c["start"] == len(c["text"])
    assert "25" in body["answer"]


def test_a_session_resumes_and_its_history_is_stored_with_the_epoch(client: TestClient) -> None:
    first = client.post("/v1/chat", json={"message": VACATION}).json()
    sid = first["session_id"]
    second = client.post("/v1/chat", json={"session_id": sid, "message": "And sick leave?"})

    assert second.status_code == 200
    assert second.json()["session_id"] == sid
    assert second.json()["turn"] == 4
    history = client.get(f"/v1/sessions/{sid}").json()
    assert history["turns"] == 4
    assert [t["role"] for t in history["history"]] == ["user", "assistant"] * 2
    assert {t["epoch"] for t in history["history"]} == {1}
    assert history["history"][1]["citations"] == first["citations"]


def test_out_of_scope_questions_say_so_instead_of_inventing(client: TestClient) -> None:
    body = client.post("/v1/chat", json={"message": "Who won the 1998 football World Cup?"}).json()

    assert body["kind"] == "not_found"
    assert body["citations"] == []
    assert "couldn't find" in body["answer"]


def test_a_standby_refuses_writes_with_503_and_retry_after(
    client: TestClient, region_store: Engine
) -> None:
    sid = client.post("/v1/chat", json={"message": VACATION}).json()["session_id"]
    _set_role(region_store, RegionRole.STANDBY, 2)  # a switchover demoted it

    r = client.post("/v1/chat", json={"session_id": sid, "message": VACATION})

    assert r.status_code == 503
    assert r.headers["Retry-After"] == "5"
    assert r.json()["code"] == "region_standby"
    assert "standby" in r.json()["detail"]
    # Reads still work on a standby: the session, and the canary used by deep probes.
    assert client.get(f"/v1/sessions/{sid}").json()["turns"] == 2
    canary = client.get("/v1/canary", params={"q": VACATION}).json()
    assert canary["role"] == "standby"
    assert canary["cited_documents"] == ["handbook/vacation-and-leave.md"]


def test_a_region_holding_a_newer_epochs_session_is_stale(
    client: TestClient, region_store: Engine
) -> None:
    sid = client.post("/v1/chat", json={"message": VACATION}).json()["session_id"]
    # The session was continued at epoch 2 elsewhere and replicated here; this region still
    # believes it is primary at epoch 1 (it missed the failover).
    with region_store.begin() as connection:
        connection.execute(text("UPDATE dialog_sessions SET epoch = 2 WHERE id = :id"), {"id": sid})

    r = client.post("/v1/chat", json={"session_id": sid, "message": "And sick leave?"})

    assert r.status_code == 503
    assert r.json()["code"] == "region_stale"
    assert client.get(f"/v1/sessions/{sid}").json()["turns"] == 2


def test_a_promoted_region_continues_a_session_at_its_new_epoch(
    client: TestClient, region_store: Engine
) -> None:
    sid = client.post("/v1/chat", json={"message": VACATION}).json()["session_id"]
    _set_role(region_store, RegionRole.PRIMARY, 2)

    r = client.post("/v1/chat", json={"session_id": sid, "message": "And sick leave?"})

    assert r.status_code == 200
    assert r.json()["epoch"] == 2
    epochs = [t["epoch"] for t in client.get(f"/v1/sessions/{sid}").json()["history"]]
    assert epochs == [1, 1, 2, 2]


def test_the_epoch_never_goes_back(region_store: Engine) -> None:
    _set_role(region_store, RegionRole.PRIMARY, 3)

    with pytest.raises(Exception, match="older than the recorded epoch 3"):
        _set_role(region_store, RegionRole.PRIMARY, 2)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"message": ""}, "body.message"),
        ({"message": "   "}, "body.message"),
        ({"message": "x" * (MAX_MESSAGE_CHARS + 1)}, "body.message"),
        ({"session_id": "not-a-uuid", "message": "hi"}, "body.session_id"),
        ({"message": "hi", "extra": 1}, "body.extra"),
        ({}, "body.message"),
    ],
)
def test_bad_chat_input_is_a_422_naming_the_field(
    client: TestClient, body: dict[str, object], field: str
) -> None:
    r = client.post("/v1/chat", json=body)

    assert r.status_code == 422
    assert r.json()["field"] == field
    assert r.headers["content-type"] == "application/problem+json"


def test_malformed_json_is_a_422(client: TestClient) -> None:
    r = client.post(
        "/v1/chat", content=b'{"message": "hi"', headers={"Content-Type": "application/json"}
    )

    assert r.status_code == 422
    assert r.json()["code"] == "validation_failed"


def test_unknown_sessions_are_404(client: TestClient) -> None:
    unknown = str(uuid.uuid4())

    chat = client.post("/v1/chat", json={"session_id": unknown, "message": VACATION})
    view = client.get(f"/v1/sessions/{unknown}")

    assert chat.status_code == 404
    assert chat.json()["code"] == "session_not_found"
    assert view.status_code == 404


def test_a_ticket_is_opened_through_the_dialog(
    region_store: Engine, minilm: MiniLmEmbedder, demo_index: SearchIndex
) -> None:
    tickets = InMemoryTicketTool()
    with TestClient(runtime_app(region_store, minilm, demo_index, tools=[tickets])) as c:
        first = c.post("/v1/chat", json={"message": "Please open a ticket for me"}).json()
        sid = first["session_id"]
        assert first["kind"] == "dialog"
        replies = [first["answer"]]
        for message in ("hardware", "My laptop screen flickers all the time", "high", "yes"):
            r = c.post("/v1/chat", json={"session_id": sid, "message": message})
            assert r.status_code == 200
            replies.append(r.json()["answer"])

    assert tickets.calls == [
        {
            "category": "hardware",
            "summary": "My laptop screen flickers all the time",
            "urgency": "high",
        }
    ]
    assert "IT-1" in replies[-1]


def test_a_failing_tool_gives_a_polite_answer_not_a_500(
    region_store: Engine, minilm: MiniLmEmbedder, demo_index: SearchIndex
) -> None:
    broken = InMemoryTicketTool(fail_with="unreachable")
    with TestClient(runtime_app(region_store, minilm, demo_index, tools=[broken])) as c:
        sid = c.post("/v1/chat", json={"message": "Please open a ticket for me"}).json()[
            "session_id"
        ]
        for message in ("software", "Excel crashes when I open big files", "low"):
            c.post("/v1/chat", json={"session_id": sid, "message": message})
        r = c.post("/v1/chat", json={"session_id": sid, "message": "yes"})

    assert r.status_code == 200
    assert "couldn't" in r.json()["answer"]
    assert len(broken.calls) == 1


def test_documents_need_an_operator_token(client: TestClient) -> None:
    doc = {"doc_id": "it/printers.md", "media_type": "text/markdown", "content": "# P\n\nText."}

    assert client.post("/v1/documents", json=doc).status_code == 401
    assert client.post("/v1/documents", json=doc, headers=auth("viewer")).status_code == 403


def test_an_added_document_is_answered_from_at_once_and_recorded(
    client: TestClient, region_store: Engine
) -> None:
    doc = {
        "doc_id": "facilities/bicycles.md",
        "media_type": "text/markdown",
        "content": "# Bicycle storage\n\nThe bicycle cage in the basement opens with your "
        "badge. Lockers for cycling gear cost nothing and are assigned by the front desk.\n",
    }

    added = client.post("/v1/documents", json=doc, headers=auth("operator"))
    again = client.post("/v1/documents", json=doc, headers=auth("operator"))
    answer = client.post("/v1/chat", json={"message": "Where can I store my bicycle?"}).json()

    assert added.status_code == 201
    assert added.json()["changed"] is True
    assert added.json()["index_generation"] == 2
    assert again.status_code == 200
    assert again.json()["changed"] is False
    assert answer["index_generation"] == 2
    assert "facilities/bicycles.md" in {c["document"] for c in answer["citations"]}
    with region_store.connect() as connection:
        row = connection.execute(
            text("SELECT epoch, region FROM documents WHERE doc_id = 'facilities/bicycles.md'")
        ).one()
    assert tuple(row) == (1, "region-a")


def test_a_pdf_document_can_be_added(client: TestClient) -> None:
    pdf = minimal_pdf(["Canteen opening hours", "The canteen serves lunch from noon to 2 pm."])
    doc = {
        "doc_id": "facilities/canteen.pdf",
        "media_type": "application/pdf",
        "content": base64.b64encode(pdf).decode(),
        "encoding": "base64",
    }

    r = client.post("/v1/documents", json=doc, headers=auth("operator"))

    assert r.status_code == 201
    assert r.json()["chunks"] >= 1


@pytest.mark.parametrize(
    ("doc", "status", "field"),
    [
        (
            {"doc_id": "a.docx", "media_type": "application/msword", "content": "x"},
            422,
            "body.media_type",
        ),
        (
            {"doc_id": "../etc/passwd", "media_type": "text/plain", "content": "x"},
            422,
            "body.doc_id",
        ),
        (
            {
                "doc_id": "a.pdf",
                "media_type": "application/pdf",
                "content": "bm90IGEgcGRm",
                "encoding": "base64",
            },
            415,
            "body.content",
        ),
        (
            {
                "doc_id": "a.pdf",
                "media_type": "application/pdf",
                "content": "%%%",
                "encoding": "base64",
            },
            422,
            "body.content",
        ),
        (
            {
                "doc_id": "a.txt",
                "media_type": "text/plain",
                "content": "x" * (MAX_DOCUMENT_BYTES + 1),
            },
            413,
            "body.content",
        ),
    ],
)
def test_bad_documents_are_refused_naming_the_problem(
    client: TestClient, doc: dict[str, str], status: int, field: str
) -> None:
    r = client.post("/v1/documents", json=doc, headers=auth("operator"))

    assert r.status_code == status
    assert r.json()["field"] == field


def test_a_standby_refuses_documents_and_keeps_its_index(
    client: TestClient, region_store: Engine
) -> None:
    _set_role(region_store, RegionRole.STANDBY, 2)
    doc = {"doc_id": "x.md", "media_type": "text/markdown", "content": "# X\n\nSomething new."}

    r = client.post("/v1/documents", json=doc, headers=auth("operator"))

    assert r.status_code == 503
    assert r.json()["code"] == "region_standby"
    assert client.get("/readyz").json()["index_generation"] == 1


def test_canary_reports_cited_and_retrieved_documents_with_timings(client: TestClient) -> None:
    r = client.get("/v1/canary", params={"q": "How do I connect to the VPN?"})

    assert r.status_code == 200
    body = r.json()
    assert body["cited_documents"] == ["it/vpn.md"]
    assert body["retrieved_documents"][0] == "it/vpn.md"
    assert set(body["timings_ms"]) == {"embed", "search", "total"}
    assert client.get("/v1/canary").status_code == 422
    assert client.get("/v1/canary", params={"q": " "}).json()["field"] == "query.q"


def test_readyz_reports_index_database_and_role(client: TestClient) -> None:
    body = client.get("/readyz").json()

    assert body["ready"] is True
    assert body["role"] == "primary"
    assert body["epoch"] == 1
    assert body["checks"] == {"index": "ok", "database": "ok", "schema": "ok", "role": "ok"}
    assert client.get("/healthz").json() == {"status": "ok"}


def test_each_chat_writes_one_structured_log_line(
    client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="switchyard.dialog.runtime"):
        sid = client.post("/v1/chat", json={"message": VACATION}).json()["session_id"]

    lines = [r for r in caplog.records if r.getMessage() == "dialog.chat"]
    assert len(lines) == 1
    fields = lines[0].fields  # type: ignore[attr-defined]
    assert fields["session"] == sid
    assert fields["query"] == VACATION
    assert fields["region"] == "region-a"
    assert fields["epoch"] == 1
    assert fields["retrieved"][0]["chunk_id"]
    assert {"embed", "search", "store", "total"} <= set(fields["timings_ms"])
    assert 0 <= fields["confidence"] <= 1


def test_metrics_expose_requests_index_generation_and_epoch(client: TestClient) -> None:
    client.post("/v1/chat", json={"message": VACATION})
    client.post("/v1/chat", json={"message": ""})

    text_out = client.get("/metrics").text

    assert 'switchyard_http_requests_total{method="POST",route="/v1/chat",status="200"} 1.0' in (
        text_out
    )
    assert 'route="/v1/chat",status="422"' in text_out
    assert "switchyard_dialog_index_generation 1.0" in text_out
    assert "switchyard_dialog_epoch 1.0" in text_out
    assert 'switchyard_dialog_answers_total{kind="extractive"} 1.0' in text_out
    checked = subprocess.run(
        ["promtool", "check", "metrics"], input=text_out, capture_output=True, text=True
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_openapi_documents_every_route(client: TestClient) -> None:
    paths = json.loads(client.get("/openapi.json").text)["paths"]

    assert {"/v1/chat", "/v1/sessions/{session_id}", "/v1/documents", "/v1/canary"} <= set(paths)
