"""HttpTicketTool against real local HTTP servers: success, 500, a server too slow to answer,
a non-JSON answer and a closed port. Every failure is an outcome plus a logged error; nothing
raises."""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from switchyard.dialog.manager import TICKET_FAILED_TEXT, tool_reply
from switchyard.dialog.tools import HttpTicketTool, ToolOutcome, ToolRegistry
from switchyard.errors import ConfigError

ARGUMENTS = {"category": "hardware", "summary": "The screen flickers constantly", "urgency": "high"}


class TicketServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), TicketHandler)
        self.received: list[tuple[str, dict[str, object]]] = []
        self.release = threading.Event()  # lets the slow route finish at teardown

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}{path}"


class TicketHandler(BaseHTTPRequestHandler):
    server: TicketServer

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        self.server.received.append((self.path, json.loads(self.rfile.read(length))))
        if self.path == "/slow":
            self.server.release.wait(10)
        status, body = {
            "/tickets": (201, b'{"id": "IT-1001"}'),
            "/legacy": (200, b'{"ticket_id": 77}'),
            "/fail": (500, b'{"error": "boom"}'),
            "/garbage": (200, b"<html>not json</html>"),
            "/no-id": (200, b'{"status": "queued"}'),
            "/slow": (201, b'{"id": "IT-late"}'),
        }[self.path]
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        except OSError:
            pass  # the client gave up waiting (the timeout test)

    def log_message(self, format: str, *args: object) -> None:
        pass  # keep pytest's output for the assertions


@pytest.fixture(scope="module")
def server() -> Iterator[TicketServer]:
    srv = TicketServer()
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield srv
    srv.release.set()
    srv.shutdown()
    srv.server_close()
    thread.join(5)


@pytest.fixture
def closed_port_url() -> str:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/tickets"


def call(url: str, timeout: float = 2.0) -> ToolOutcome:
    return asyncio.run(HttpTicketTool(url, timeout_seconds=timeout).call(ARGUMENTS))


def failure(caplog: pytest.LogCaptureFixture) -> dict[str, object]:
    (record,) = [r for r in caplog.records if r.getMessage() == "tool.failed"]
    assert record.levelno == logging.WARNING
    fields: dict[str, object] = record.fields  # type: ignore[attr-defined]
    return fields


def test_created_ticket_returns_its_id(server: TicketServer) -> None:
    outcome = call(server.url("/tickets"))

    assert outcome == ToolOutcome(True, "IT-1001", "ticket opened", None)
    assert ("/tickets", {**ARGUMENTS, "source": "switchyard-dialog"}) in server.received
    assert tool_reply(outcome).startswith("I opened ticket IT-1001.")


def test_ticket_id_field_is_accepted_too(server: TicketServer) -> None:
    assert call(server.url("/legacy")).reference == "77"


def test_server_error_is_a_logged_failure(
    server: TicketServer, caplog: pytest.LogCaptureFixture
) -> None:
    outcome = call(server.url("/fail"))

    assert (outcome.ok, outcome.error_code) == (False, "http_500")
    fields = failure(caplog)
    assert fields["error_code"] == "http_500"
    assert fields["tool"] == "open_ticket"
    assert fields["summary_chars"] == len(ARGUMENTS["summary"])
    assert tool_reply(outcome) == TICKET_FAILED_TEXT


def test_summary_is_never_logged_verbatim(
    server: TicketServer, caplog: pytest.LogCaptureFixture
) -> None:
    call(server.url("/fail"))

    assert ARGUMENTS["summary"] not in caplog.text
    assert ARGUMENTS["summary"] not in json.dumps(failure(caplog))


@pytest.mark.parametrize("path", ["/garbage", "/no-id"])
def test_answer_without_a_ticket_id_is_bad_response(
    server: TicketServer, caplog: pytest.LogCaptureFixture, path: str
) -> None:
    assert call(server.url(path)).error_code == "bad_response"
    assert failure(caplog)["error_code"] == "bad_response"


def test_slow_server_times_out(server: TicketServer, caplog: pytest.LogCaptureFixture) -> None:
    outcome = call(server.url("/slow"), timeout=0.3)

    assert (outcome.ok, outcome.error_code) == (False, "timeout")
    assert failure(caplog)["error_code"] == "timeout"


def test_closed_port_is_unreachable(closed_port_url: str, caplog: pytest.LogCaptureFixture) -> None:
    outcome = call(closed_port_url)

    assert (outcome.ok, outcome.error_code) == (False, "unreachable")
    assert failure(caplog)["error_code"] == "unreachable"
    assert tool_reply(outcome) == TICKET_FAILED_TEXT


def test_shared_client_is_used_and_left_open(server: TicketServer) -> None:
    async def twice() -> tuple[ToolOutcome, ToolOutcome, bool]:
        async with httpx.AsyncClient() as client:
            tool = HttpTicketTool(server.url("/tickets"), client=client)
            first, second = await tool.call(ARGUMENTS), await tool.call(ARGUMENTS)
            return first, second, client.is_closed

    first, second, closed = asyncio.run(twice())

    assert first.reference == second.reference == "IT-1001"
    assert not closed


def test_missing_arguments_fail_before_any_request(
    server: TicketServer, caplog: pytest.LogCaptureFixture
) -> None:
    before = len(server.received)
    tool = HttpTicketTool(server.url("/tickets"))

    outcome = asyncio.run(tool.call({"category": "hardware", "summary": " "}))

    assert outcome.error_code == "bad_arguments"
    assert "summary" in outcome.detail
    assert "urgency" in outcome.detail
    assert len(server.received) == before
    assert failure(caplog)["error_code"] == "bad_arguments"


def test_registry_without_the_tool_is_not_configured(caplog: pytest.LogCaptureFixture) -> None:
    outcome = asyncio.run(ToolRegistry([]).call("open_ticket", ARGUMENTS))

    assert outcome.error_code == "not_configured"
    assert failure(caplog)["tool"] == "open_ticket"


def test_registry_routes_to_the_http_tool(server: TicketServer) -> None:
    registry = ToolRegistry([HttpTicketTool(server.url("/tickets"))])

    assert "open_ticket" in registry
    assert asyncio.run(registry.call("open_ticket", ARGUMENTS)).reference == "IT-1001"


def test_registry_refuses_two_tools_of_one_name() -> None:
    tool = HttpTicketTool("http://127.0.0.1:9/tickets")
    with pytest.raises(ConfigError, match="configured twice"):
        ToolRegistry([tool, tool])


@pytest.mark.parametrize("url", ["ftp://example.com/t", "not a url", "http:///tickets"])
def test_endpoint_must_be_an_http_url(url: str) -> None:
    with pytest.raises(ConfigError, match="endpoint_url"):
        HttpTicketTool(url)


def test_timeout_must_be_positive() -> None:
    with pytest.raises(ConfigError, match="timeout_seconds"):
        HttpTicketTool("http://127.0.0.1:9/tickets", timeout_seconds=0)
