"""The REST API against the real control-plane store: auth, errors, pagination, metrics."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from support.db import scratch_database
from switchyard.adapters.control_postgres import PostgresControlStore
from switchyard.api.app import create_app
from switchyard.api.auth import TokenTable
from switchyard.api.context import ApiContext
from switchyard.api.deps import get_session
from switchyard.db import migrate
from switchyard.db.engine import make_engine
from switchyard.db.regions import ensure_regions
from switchyard.domain.region import RegionRole
from switchyard.domain.secrets import Secret
from switchyard.observability.metrics import ApiMetrics

TOKENS = {role: f"test-{role}-token-0123456789" for role in ("viewer", "operator", "admin")}


def bearer(role: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {TOKENS[role]}"}


def make_context(engine: Engine) -> ApiContext:
    return ApiContext(
        engine=engine,
        tokens=TokenTable.from_secret("test", {k: Secret(v) for k, v in TOKENS.items()}),
        metrics=ApiMetrics.create("test"),
        expected_revision=migrate.head_revision(),
        control=PostgresControlStore(engine),
    )


@pytest.fixture
def client(migrated_engine: Engine, db_session: Session) -> Iterator[TestClient]:
    ensure_regions(
        session=db_session,
        specs=[("region-a", RegionRole.PRIMARY), ("region-b", RegionRole.STANDBY)],
    )
    app = create_app(make_context(migrated_engine))
    app.dependency_overrides[get_session] = lambda: db_session
    with TestClient(app) as c:
        yield c


def assert_problem(resp: object, status: int, code: str, field: str | None = None) -> None:
    assert resp.status_code == status, resp.text  # type: ignore[attr-defined]
    assert resp.headers["content-type"] == "application/problem+json"  # type: ignore[attr-defined]
    body = resp.json()  # type: ignore[attr-defined]
    assert body["status"] == status
    assert body["code"] == code
    assert body["title"]
    assert body["detail"]
    assert body["type"]
    if field is not None:
        assert body["field"] == field


def test_health_and_readiness_on_a_migrated_store(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok", "checks": {}}
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["checks"] == {"store": "ok", "migrations": "ok"}


def test_readiness_fails_until_the_store_is_migrated(control_db_url: str) -> None:
    with scratch_database(control_db_url) as url:
        engine = make_engine(url)
        try:
            with TestClient(create_app(make_context(engine))) as c:
                before = c.get("/readyz")
                assert before.status_code == 503
                assert before.json()["checks"]["migrations"].startswith("at none")
                migrate.upgrade(url)
                assert c.get("/readyz").status_code == 200
        finally:
            engine.dispose()


def test_readiness_fails_but_process_answers_when_store_is_unreachable() -> None:
    # Port 9 (discard) on loopback: nothing listens, so connecting is refused at once.
    engine = make_engine("postgresql+psycopg://nobody@127.0.0.1:9/none", connect_timeout_seconds=1)
    with TestClient(create_app(make_context(engine))) as c:
        resp = c.get("/readyz")
        assert resp.status_code == 503
        assert resp.json()["checks"]["store"].startswith("unreachable")
        assert c.get("/healthz").status_code == 200
        # A data route maps the unreachable store to 503 with Retry-After, not a 500.
        data = c.get("/v1/regions", headers=bearer("viewer"))
        assert_problem(data, 503, "unavailable")
        assert data.headers["retry-after"]


@pytest.mark.parametrize("path", ["/v1/regions", "/v1/regions/region-a", "/v1/events"])
def test_reads_need_a_token(client: TestClient, path: str) -> None:
    missing = client.get(path)
    assert_problem(missing, 401, "unauthenticated", "header.Authorization")
    assert missing.headers["www-authenticate"] == "Bearer"
    wrong = client.get(path, headers={"Authorization": "Bearer not-a-known-token"})
    assert_problem(wrong, 401, "invalid_token", "header.Authorization")


def test_lists_and_gets_regions(client: TestClient) -> None:
    listed = client.get("/v1/regions", headers=bearer("viewer")).json()["items"]
    assert [(r["name"], r["role"], r["epoch"]) for r in listed] == [
        ("region-a", "primary", 1),
        ("region-b", "standby", 0),
    ]
    one = client.get("/v1/regions/region-b", headers=bearer("viewer"))
    assert one.status_code == 200
    assert one.json()["role"] == "standby"


def test_unknown_region_is_404_naming_the_field(client: TestClient) -> None:
    resp = client.get("/v1/regions/region-z", headers=bearer("viewer"))
    assert_problem(resp, 404, "region_not_found", "path.name")
    assert "region-z" in resp.json()["detail"]


def test_malformed_region_name_is_422(client: TestClient) -> None:
    resp = client.get("/v1/regions/Not_A_Region", headers=bearer("viewer"))
    assert_problem(resp, 422, "validation_failed", "path.name")


def test_notes_need_the_operator_role(client: TestClient) -> None:
    note = {"message": "maintenance window starts", "region": "region-a"}
    denied = client.post("/v1/events", headers=bearer("viewer"), json=note)
    assert_problem(denied, 403, "forbidden")
    assert "operator" in denied.json()["detail"]
    for role in ("operator", "admin"):
        created = client.post("/v1/events", headers=bearer(role), json=note)
        assert created.status_code == 201, created.text
        assert created.json()["actor"] == f"{role}-token"
        assert created.json()["code"] == "operator_note"
    latest = client.get("/v1/events?limit=1", headers=bearer("viewer")).json()["items"][0]
    assert latest["actor"] == "admin-token"
    assert latest["reason"] == "maintenance window starts"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"message": ""}, "body.message"),
        ({"message": "x" * 2001}, "body.message"),
        ({}, "body.message"),
        ({"message": "ok", "colour": "red"}, "body.colour"),
        ({"message": "ok", "region": "Bad Name"}, "body.region"),
    ],
)
def test_bad_note_bodies_are_422_naming_the_field(
    client: TestClient, body: dict[str, object], field: str
) -> None:
    resp = client.post("/v1/events", headers=bearer("operator"), json=body)
    assert_problem(resp, 422, "validation_failed", field)


def test_malformed_json_is_422(client: TestClient) -> None:
    resp = client.post(
        "/v1/events",
        headers={**bearer("operator"), "Content-Type": "application/json"},
        content=b'{"message": ',
    )
    assert_problem(resp, 422, "validation_failed")


def test_note_for_unknown_region_is_404(client: TestClient) -> None:
    resp = client.post(
        "/v1/events", headers=bearer("operator"), json={"message": "hi", "region": "region-z"}
    )
    assert_problem(resp, 404, "region_not_found", "body.region")


def test_events_page_newest_first_with_a_cursor(client: TestClient) -> None:
    for i in range(5):
        client.post("/v1/events", headers=bearer("operator"), json={"message": f"note {i}"})
    seen: list[str] = []
    before: int | None = None
    for _ in range(10):
        query = "?limit=2" + (f"&before_id={before}" if before else "")
        page = client.get("/v1/events" + query, headers=bearer("viewer")).json()
        assert len(page["items"]) <= 2
        seen += [e["reason"] for e in page["items"]]
        before = page["next_before_id"]
        if before is None:
            break
    assert seen[:5] == [f"note {i}" for i in range(4, -1, -1)]


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("limit=0", "query.limit"),
        ("limit=501", "query.limit"),
        ("limit=ten", "query.limit"),
        ("before_id=0", "query.before_id"),
        ("before_id=-3", "query.before_id"),
        ("region=NOPE!", "query.region"),
    ],
)
def test_bad_pagination_is_422_naming_the_field(client: TestClient, query: str, field: str) -> None:
    resp = client.get(f"/v1/events?{query}", headers=bearer("viewer"))
    assert_problem(resp, 422, "validation_failed", field)


def test_unknown_route_is_a_problem_too(client: TestClient) -> None:
    assert_problem(client.get("/v1/nothing"), 404, "route_not_found")


def test_openapi_documents_the_routes(client: TestClient) -> None:
    assert client.get("/docs").status_code == 200
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/v1/regions", "/v1/regions/{name}", "/v1/events", "/readyz"} <= set(paths)


def test_metrics_use_route_templates_and_pass_promtool(client: TestClient) -> None:
    client.get("/v1/regions/region-a", headers=bearer("viewer"))
    client.get("/v1/regions/region-z", headers=bearer("viewer"))
    text = client.get("/metrics").text
    assert 'route="/v1/regions/{name}"' in text
    assert "region-z" not in text  # path values never become labels
    assert (
        'switchyard_http_requests_total{method="GET",route="/v1/regions/{name}",status="404"}'
        in text
    )
    check = subprocess.run(
        ["promtool", "check", "metrics"], input=text, capture_output=True, text=True, check=False
    )
    assert check.returncode == 0, check.stdout + check.stderr
