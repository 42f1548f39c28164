"""A small OpenAI-compatible chat server for testing the LLM gateway's HTTP contract.

A real HTTP server on 127.0.0.1 (stdlib ``ThreadingHTTPServer``, one thread per request), so the
gateway's client, timeouts and connection errors are exercised for real::

    with FakeLlm(reply="VPN needs MFA [1].") as llm:
        settings = LlmSettings(base_url=llm.base_url, model="fake")
        ...
        assert llm.requests[0].body["model"] == "fake"

``hold=True`` parks every request until :meth:`FakeLlm.release`, so tests reach a known number
of concurrent requests without guessing at sleeps; :meth:`FakeLlm.wait_for_active` waits for it.

Import as ``from support.fake_llm import FakeLlm``.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Self

COMPLETIONS_PATH = "/v1/chat/completions"


@dataclass(frozen=True)
class RecordedRequest:
    """One request as received; ``headers`` keys are lower-case."""

    path: str
    headers: dict[str, str]
    body: Any


class FakeLlm:
    """Answers ``POST /v1/chat/completions`` like an OpenAI-compatible server.

    ``reply`` is the content of every answer; ``delay`` seconds pass before it; ``status`` other
    than 200 sends an OpenAI-style error body; ``malformed`` sends a body that is not JSON;
    ``raw_body`` (status 200) replaces the JSON answer; ``hold`` parks requests until
    :meth:`release`. Attributes may be changed between requests.
    """

    def __init__(
        self,
        reply: str = "The answer [1].",
        *,
        delay: float = 0.0,
        status: int = 200,
        malformed: bool = False,
        raw_body: bytes | None = None,
        hold: bool = False,
        model: str = "fake-model",
    ) -> None:
        self.reply = reply
        self.delay = delay
        self.status = status
        self.malformed = malformed
        self.raw_body = raw_body
        self.model = model
        self._gate = threading.Event()
        if not hold:
            self._gate.set()
        self._lock = threading.Lock()
        self._active = 0
        self._max_active = 0
        self._requests: list[RecordedRequest] = []
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # --- lifecycle ---------------------------------------------------------------------------

    def start(self) -> Self:
        server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        server.daemon_threads = True
        self._server = server
        # A short poll interval: shutdown() waits up to one interval, and every test stops one.
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop accepting requests; parked requests are released first."""
        self._gate.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # --- observations ------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        """The URL to configure the gateway with (``.../v1``)."""
        assert self._server is not None, "FakeLlm is not started"
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/v1"

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._requests)

    @property
    def active(self) -> int:
        with self._lock:
            return self._active

    @property
    def max_active(self) -> int:
        """The most requests this server was handling at the same moment."""
        with self._lock:
            return self._max_active

    def release(self) -> None:
        """Let parked requests (and every later one) be answered."""
        self._gate.set()

    def wait_for_active(self, count: int, timeout: float = 5.0) -> None:
        """Block until ``count`` requests are being handled at once; AssertionError on timeout."""
        deadline = time.monotonic() + timeout
        while self.active < count:
            assert time.monotonic() < deadline, f"only {self.active} of {count} requests arrived"
            time.sleep(0.005)

    # --- handling (called from the server's threads) -----------------------------------------

    def _handle(self, path: str, headers: dict[str, str], raw: bytes) -> tuple[int, bytes]:
        try:
            body: Any = json.loads(raw)
        except ValueError:
            body = raw.decode("utf-8", "replace")
        with self._lock:
            self._requests.append(RecordedRequest(path, headers, body))
            self._active += 1
            self._max_active = max(self._max_active, self._active)
        try:
            self._gate.wait()
            if self.delay:
                time.sleep(self.delay)
            return self._response()
        finally:
            with self._lock:
                self._active -= 1

    def _response(self) -> tuple[int, bytes]:
        if self.status != 200:
            error = {"error": {"message": "fake failure", "type": "server_error"}}
            return self.status, json.dumps(error).encode()
        if self.malformed:
            return 200, b'{"choices": [ this is not json'
        if self.raw_body is not None:
            return 200, self.raw_body
        answer = {
            "id": "chatcmpl-fake",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": self.model,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": self.reply},
                    "finish_reason": "stop",
                }
            ],
            "usage": {"prompt_tokens": 42, "completion_tokens": 7, "total_tokens": 49},
        }
        return 200, json.dumps(answer).encode()


def _handler_for(fake: FakeLlm) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            if self.path != COMPLETIONS_PATH:
                self._send(404, b'{"error": {"message": "not found"}}')
                return
            headers = {k.lower(): v for k, v in self.headers.items()}
            status, body = fake._handle(self.path, headers, raw)
            self._send(status, body)

        def _send(self, status: int, body: bytes) -> None:
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (a timeout test); nothing to tell it

        def log_message(self, format: str, *args: Any) -> None:
            pass  # keep test output clean

    return Handler
