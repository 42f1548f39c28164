"""Every probe against real things: in-test HTTP servers on loopback, a closed port, a server
that never answers, the harness's region PostgreSQL and Knot, and the real dialog runtime.

No pytest-asyncio: each test drives its coroutine with ``asyncio.run``; servers written for a
test run in that same loop, and ``ProbeClients`` is built inside it (a session is bound to
its loop).
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any, TypeVar
from urllib.parse import quote

import dns.message
import dns.query
import pytest
import uvicorn
from aiohttp import web
from fastapi import FastAPI
from sqlalchemy import Engine, make_url

from support.ports import closed_port
from support.runtime import runtime_app
from switchyard.adapters.probes import (
    CanaryProbe,
    DnsProbe,
    HttpProbe,
    PostgresProbe,
    ProbeClients,
    ReadinessProbe,
    TcpProbe,
)
from switchyard.controller.probing import run_round
from switchyard.db import migrate
from switchyard.db.engine import make_engine, unit_of_work
from switchyard.db.region_state import seed_region_state
from switchyard.devenv import dns as devdns
from switchyard.devenv.harness import Harness
from switchyard.dialog.embedding import MiniLmEmbedder
from switchyard.dialog.index import SearchIndex
from switchyard.dialog.schemas import CanaryOut, ReadyOut
from switchyard.domain.probe import ProbeKind, ProbeResult
from switchyard.domain.region import RegionRole
from switchyard.domain.secrets import Secret
from switchyard.ports.probe import Probe

T = TypeVar("T")

TIMEOUT = 2.0  # generous: these probes are meant to succeed or fail on their own merits
SHORT = 0.3  # for probes that are meant to time out
PROBE_DB = "switchyard_test_probes"
GSLB_NAME = f"{devdns.RECORD}.{devdns.ZONE}"
QUESTION = "How many days of paid vacation does a new full-time employee get per year?"
VACATION_DOC = "handbook/vacation-and-leave.md"


def run(main: Callable[[], Coroutine[Any, Any, T]]) -> T:
    return asyncio.run(main())


def canary_body(cited: list[str], *, role: str = "primary", epoch: int = 4) -> dict[str, object]:
    """A body shaped by the runtime's own response model, so a schema change breaks this."""
    return CanaryOut(
        query=QUESTION,
        answer="Twenty-five days.",
        kind="extractive" if cited else "not_found",
        confidence=0.8,
        cited_documents=cited,
        retrieved_documents=[VACATION_DOC, "handbook/parental-leave.md"],
        region="region-a",
        role=role,
        epoch=epoch,
        index_generation=1,
        timings_ms={"total": 3.0},
    ).model_dump()


def ready_body(ready: bool) -> dict[str, object]:
    checks = {"index": "ok", "database": "ok" if ready else "unreachable"}
    return ReadyOut(
        ready=ready,
        region="region-a",
        role="standby",
        epoch=2,
        index_generation=1,
        checks=checks,
    ).model_dump()


class Site:
    """An aiohttp.web server on a free loopback port, with the requests it saw."""

    def __init__(self) -> None:
        self.queries: list[str] = []
        self.peers: set[object] = set()
        self.base = ""

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.peers.add(request.transport.get_extra_info("peername") if request.transport else None)
        self.queries.append(request.query.get("q", ""))
        path = request.path
        if path == "/healthz":
            return web.Response(text='{"status": "ok"}', content_type="application/json")
        if path == "/down":
            return web.Response(status=503, text="down")
        if path == "/redirect":
            raise web.HTTPFound("/healthz")
        if path.startswith("/ready/"):
            ready = path.endswith("/yes/readyz")
            return web.json_response(ready_body(ready), status=200 if ready else 503)
        if path == "/garbage/readyz":
            return web.Response(text="<html>proxy error</html>")
        if path == "/cites/v1/canary":
            return web.json_response(canary_body([VACATION_DOC]))
        if path == "/uncited/v1/canary":
            return web.json_response(canary_body(["handbook/expenses-and-reimbursement.md"]))
        if path == "/broken/v1/canary":
            return web.json_response({"cited_documents": "handbook/vacation-and-leave.md"})
        return web.Response(status=404)


@asynccontextmanager
async def serving() -> AsyncIterator[Site]:
    site = Site()
    app = web.Application()
    app.router.add_route("GET", "/{tail:.*}", site.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    tcp = web.TCPSite(runner, "127.0.0.1", 0)
    await tcp.start()
    host, port = runner.addresses[0][:2]
    site.base = f"http://{host}:{port}"
    try:
        yield site
    finally:
        await runner.cleanup()


@asynccontextmanager
async def silent_server() -> AsyncIterator[int]:
    """A TCP server that accepts connections and never says a word."""
    held: list[asyncio.StreamWriter] = []

    async def accept(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)

    server = await asyncio.start_server(accept, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        for writer in held:
            writer.close()
        server.close()
        await server.wait_closed()


def http_results(*probes: Callable[[Site, ProbeClients], Probe]) -> list[ProbeResult]:
    """Run each probe once, one after another, against a fresh in-test server."""

    async def main() -> list[ProbeResult]:
        async with serving() as site, ProbeClients() as clients:
            return [await make(site, clients).probe(TIMEOUT) for make in probes]

    return run(main)


# --- HTTP ---------------------------------------------------------------------------------------


def test_http_probe_passes_on_the_expected_status_and_body() -> None:
    (plain, with_body) = http_results(
        lambda s, c: HttpProbe("region-a", f"{s.base}/healthz", clients=c),
        lambda s, c: HttpProbe("region-a", f"{s.base}/healthz", clients=c, body_contains="ok"),
    )

    for result in (plain, with_body):
        assert (result.target, result.kind, result.ok, result.code) == (
            "region-a",
            ProbeKind.HTTP,
            True,
            "ok",
        )
        assert result.latency_ms > 0
        assert "answered 200" in result.reason


def test_http_probe_reports_a_wrong_status_or_body() -> None:
    down, redirect, body, expected_503 = http_results(
        lambda s, c: HttpProbe("a", f"{s.base}/down", clients=c),
        lambda s, c: HttpProbe("a", f"{s.base}/redirect", clients=c),
        lambda s, c: HttpProbe("a", f"{s.base}/healthz", clients=c, body_contains="alive"),
        lambda s, c: HttpProbe("a", f"{s.base}/down", clients=c, expect_status=503),
    )

    assert (down.ok, down.code) == (False, "http_status")
    assert "answered 503, expected 200" in down.reason
    assert (redirect.code, "answered 302" in redirect.reason) == ("http_status", True)
    assert (body.ok, body.code) == (False, "body_mismatch")
    assert "'alive'" in body.reason
    assert expected_503.ok


def test_http_probes_reuse_one_keep_alive_connection() -> None:
    async def main() -> set[object]:
        async with serving() as site, ProbeClients() as clients:
            probe = HttpProbe("a", f"{site.base}/healthz", clients=clients)
            for _ in range(20):
                assert (await probe.probe(TIMEOUT)).ok
            return site.peers

    assert len(run(main)) == 1


def test_refused_connections_have_their_own_code_and_no_password_in_the_reason() -> None:
    port = closed_port()

    async def main() -> list[ProbeResult]:
        async with ProbeClients() as clients:
            url = f"http://probe:pw-9f8e7d@127.0.0.1:{port}/healthz"
            http = await HttpProbe("a", url, clients=clients).probe(TIMEOUT)
        tcp = await TcpProbe("a", "127.0.0.1", port).probe(TIMEOUT)
        return [http, tcp]

    http, tcp = run(main)

    assert (http.ok, http.code, tcp.ok, tcp.code) == (
        False,
        "connect_refused",
        False,
        "connect_refused",
    )
    assert f"127.0.0.1:{port}" in http.reason
    assert "pw-9f8e7d" not in http.reason
    assert "probe" not in http.reason.split("GET ", 1)[1]


def test_a_server_that_never_answers_times_out_while_tcp_connects() -> None:
    async def main() -> list[ProbeResult]:
        async with silent_server() as port, ProbeClients() as clients:
            http = await HttpProbe("a", f"http://127.0.0.1:{port}/", clients=clients).probe(SHORT)
            tcp = await TcpProbe("a", "127.0.0.1", port).probe(TIMEOUT)
            return [http, tcp]

    http, tcp = run(main)

    assert (http.ok, http.code) == (False, "timeout")
    assert "no answer within 0.3 s" in http.reason
    assert (tcp.ok, tcp.code, tcp.kind) == (True, "ok", ProbeKind.TCP)


# --- readiness and canary -----------------------------------------------------------------------


def test_readiness_probe_carries_role_and_epoch_ready_or_not() -> None:
    ready, not_ready, garbage = http_results(
        lambda s, c: ReadinessProbe("region-a", f"{s.base}/ready/yes", clients=c),
        lambda s, c: ReadinessProbe("region-a", f"{s.base}/ready/no/", clients=c),
        lambda s, c: ReadinessProbe("region-a", f"{s.base}/garbage", clients=c),
    )

    assert (ready.ok, ready.code, ready.role, ready.epoch) == (True, "ok", "standby", 2)
    assert (not_ready.ok, not_ready.code, not_ready.role, not_ready.epoch) == (
        False,
        "not_ready",
        "standby",
        2,
    )
    assert "database=unreachable" in not_ready.reason
    assert "index" not in not_ready.reason.split("checks", 1)[1]
    assert (garbage.code, garbage.role) == ("body_mismatch", None)
    assert "not JSON" in garbage.reason


def test_canary_passes_only_when_the_expected_document_is_cited() -> None:
    async def main() -> tuple[list[ProbeResult], list[str]]:
        async with serving() as s, ProbeClients() as c:
            probes = [
                CanaryProbe("region-a", f"{s.base}/cites", QUESTION, VACATION_DOC, clients=c),
                CanaryProbe("region-a", f"{s.base}/uncited/", QUESTION, VACATION_DOC, clients=c),
                CanaryProbe("region-a", f"{s.base}/broken", QUESTION, VACATION_DOC, clients=c),
                CanaryProbe("region-a", f"{s.base}/missing", QUESTION, VACATION_DOC, clients=c),
            ]
            return [await p.probe(TIMEOUT) for p in probes], s.queries

    (cited, uncited, broken, missing), queries = run(main)

    assert queries == [QUESTION] * 4  # sent as ?q=, decoded intact by the server
    assert (cited.ok, cited.code, cited.kind, cited.role, cited.epoch) == (
        True,
        "ok",
        ProbeKind.CANARY,
        "primary",
        4,
    )
    assert (uncited.ok, uncited.code, uncited.role, uncited.epoch) == (
        False,
        "not_cited",
        "primary",
        4,
    )
    assert "handbook/expenses-and-reimbursement.md" in uncited.reason
    assert (broken.code, "cited_documents" in broken.reason) == ("body_mismatch", True)
    assert (missing.code, "404" in missing.reason) == ("http_status", True)


# --- a round of real probes ---------------------------------------------------------------------


def test_a_round_of_real_probes_keeps_order_and_deadline() -> None:
    refused = closed_port()

    async def main() -> list[ProbeResult]:
        async with serving() as s, silent_server() as silent, ProbeClients() as c:
            probes: list[Probe] = [
                HttpProbe("a", f"http://127.0.0.1:{silent}/healthz", clients=c),
                TcpProbe("b", "127.0.0.1", refused),
                HttpProbe("c", f"{s.base}/healthz", clients=c),
                CanaryProbe("d", f"{s.base}/cites", QUESTION, VACATION_DOC, clients=c),
            ]
            return await run_round(probes, SHORT)

    results = run(main)

    assert [(r.target, r.code) for r in results] == [
        ("a", "timeout"),
        ("b", "connect_refused"),
        ("c", "ok"),
        ("d", "ok"),
    ]


# --- PostgreSQL ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def probe_db_url(harness: Harness) -> str:
    """A database on region-a's PostgreSQL with the region schema and region-a at epoch 7."""
    url = harness.region_dbs["region-a"].fresh_database(PROBE_DB)
    migrate.upgrade(url, schema=migrate.REGION)
    engine: Engine = make_engine(url)
    with unit_of_work(engine) as session:
        seed_region_state(session=session, region="region-a", role=RegionRole.PRIMARY, epoch=7)
    engine.dispose()
    return url


def pg_probe(url: str, region: str = "region-a") -> ProbeResult:
    return run(lambda: PostgresProbe("region-a", Secret(url), region=region).probe(TIMEOUT))


def test_postgres_probe_reads_role_and_epoch(probe_db_url: str) -> None:
    result = pg_probe(probe_db_url)  # a SQLAlchemy postgresql+psycopg:// URL is accepted

    assert (result.ok, result.code, result.kind) == (True, "ok", ProbeKind.POSTGRES)
    assert (result.role, result.epoch) == ("primary", 7)
    assert result.latency_ms > 0


def test_postgres_probe_without_a_row_for_the_region_is_a_db_error(probe_db_url: str) -> None:
    result = pg_probe(probe_db_url, region="region-z")

    assert (result.ok, result.code, result.role) == (False, "db_error", None)
    assert "no region_state row for region-z" in result.reason


def test_postgres_probe_with_a_wrong_password_never_shows_a_password(probe_db_url: str) -> None:
    real = make_url(probe_db_url)
    wrong_password = "not-the-password-7c1d"
    wrong = real.set(password=wrong_password).render_as_string(hide_password=False)

    result = pg_probe(wrong)

    assert (result.ok, result.code) == (False, "db_error")
    assert "password authentication failed" in result.reason
    assert wrong_password not in result.reason
    assert quote(wrong_password) not in result.reason
    assert str(real.password) not in result.reason
    assert "\n" not in result.reason


def test_postgres_probe_of_a_database_without_the_table_is_a_db_error(harness: Harness) -> None:
    url = harness.region_dbs["region-a"].fresh_database(PROBE_DB + "_empty")

    result = pg_probe(url)

    assert (result.code, 'relation "region_state" does not exist' in result.reason) == (
        "db_error",
        True,
    )


def test_postgres_probe_of_a_closed_port_is_a_db_error() -> None:
    url = f"postgresql://postgres:pw-3a2b@127.0.0.1:{closed_port()}/dialog"

    result = pg_probe(url)

    assert (result.ok, result.code) == (False, "db_error")
    assert "refused" in result.reason.lower()
    assert "pw-3a2b" not in result.reason


def test_postgres_probe_refuses_an_unparsable_dsn_without_quoting_it() -> None:
    with pytest.raises(ValueError, match="cannot be parsed") as err:
        PostgresProbe("region-a", Secret("host=x password=hunter2 junk"), region="region-a")
    assert "hunter2" not in str(err.value)


# --- DNS (Knot) ---------------------------------------------------------------------------------


def knot_answer(harness: Harness) -> str:
    """What Knot answers for the GSLB record now (other suites may move it between regions)."""
    query = dns.message.make_query(GSLB_NAME, "A")
    response = dns.query.udp(query, "127.0.0.1", port=harness.knot.port, timeout=2)
    (rrset,) = response.answer
    (rdata,) = rrset
    answer: str = rdata.to_text()
    return answer


def dns_probe(harness: Harness, name: str, expected: str | None) -> ProbeResult:
    probe = DnsProbe("region-a", "127.0.0.1", harness.knot.port, name, expected)
    return run(lambda: probe.probe(TIMEOUT))


def test_dns_probe_checks_the_gslb_answer_at_knot(harness: Harness) -> None:
    current = knot_answer(harness)
    assert current in devdns.REGION_ADDRESSES.values()  # seeded as 127.0.1.1 (region-a)

    right = dns_probe(harness, GSLB_NAME, current)
    any_answer = dns_probe(harness, GSLB_NAME, None)
    wrong = dns_probe(harness, GSLB_NAME, "127.0.9.9")

    assert (right.ok, right.code, right.kind) == (True, "ok", ProbeKind.DNS)
    assert current in right.reason
    assert (any_answer.ok, current in any_answer.reason) == (True, True)
    assert (wrong.ok, wrong.code) == (False, "wrong_answer")
    assert f"answered {current}, expected 127.0.9.9" in wrong.reason


def test_dns_probe_of_a_missing_name_is_a_dns_error(harness: Harness) -> None:
    result = dns_probe(harness, f"no-such-record.{devdns.ZONE}", None)

    assert (result.ok, result.code) == (False, "dns_error")
    assert "NXDOMAIN" in result.reason


def test_dns_probe_of_a_silent_server_times_out() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:
        silent.bind(("127.0.0.1", 0))  # receives queries, never replies
        port = silent.getsockname()[1]
        probe = DnsProbe("region-a", "127.0.0.1", port, GSLB_NAME, "127.0.1.1")
        result = run(lambda: probe.probe(SHORT))

    assert (result.ok, result.code) == (False, "timeout")


# --- the real dialog runtime --------------------------------------------------------------------


@contextmanager
def uvicorn_serving(app: FastAPI) -> Iterator[str]:
    """The app served by uvicorn in a thread on a free loopback port; its base URL."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        config = uvicorn.Config(app, log_level="warning", access_log=False)
        server = uvicorn.Server(config)
        thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
        thread.start()
        deadline = time.monotonic() + 20
        while not server.started:
            if time.monotonic() > deadline or not thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.02)
        host, port = sock.getsockname()
        try:
            yield f"http://{host}:{port}"
        finally:
            server.should_exit = True
            thread.join(10)


def test_probes_against_the_real_runtime(
    region_store: Engine, minilm: MiniLmEmbedder, demo_index: SearchIndex
) -> None:
    async def main(base: str) -> list[ProbeResult]:
        async with ProbeClients() as c:
            probes: list[Probe] = [
                HttpProbe("region-a", f"{base}/healthz", clients=c),
                ReadinessProbe("region-a", base, clients=c),
                CanaryProbe("region-a", base, QUESTION, VACATION_DOC, clients=c),
                CanaryProbe("region-a", base, QUESTION, "handbook/it-security.md", clients=c),
            ]
            return await run_round(probes, 10.0)

    with uvicorn_serving(runtime_app(region_store, minilm, demo_index)) as base:
        health, ready, cited, uncited = asyncio.run(main(base))

    assert health.ok
    assert (ready.ok, ready.role, ready.epoch) == (True, "primary", 1)
    assert (cited.ok, cited.role, cited.epoch) == (True, "primary", 1)
    assert (uncited.code, VACATION_DOC in uncited.reason) == ("not_cited", True)
