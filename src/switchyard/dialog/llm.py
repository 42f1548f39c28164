"""The LLM gateway: an OpenAI-compatible chat endpoint behind bounded concurrency.

Used only when an LLM URL is configured; the default answering path is extractive. The prompt
itself is built and its reply parsed by the pure functions in :mod:`switchyard.dialog.prompt`.

:class:`LlmGateway`: at most ``max_concurrency`` requests reach the endpoint at once; a request
that waits ``queue_timeout_seconds`` for a slot fails with :class:`LlmBusy` (the runtime answers
503 with ``Retry-After``). Every other failure is :class:`LlmUnavailable` with a stable
:class:`LlmFailure` reason.

Invariant: neither the API key nor the prompt reaches an exception message or a log line; errors
name the failure category and the HTTP status only (a provider's error body may echo the prompt).
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

import httpx

from switchyard.dialog.prompt import ChatMessage, Completion
from switchyard.domain.secrets import Secret
from switchyard.errors import TransientError
from switchyard.observability.logging import log_event

log = logging.getLogger(__name__)


# --- values ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LlmSettings:
    """Where and how to call the endpoint. ``base_url`` ends before ``/chat/completions``.

    Invariants (checked, ``ValueError`` naming the field): ``base_url`` is http(s); counts and
    timeouts are positive; ``0 <= temperature <= 2``.
    """

    base_url: str
    model: str
    api_key: Secret | None = None
    max_concurrency: int = 4
    queue_timeout_seconds: float = 30.0
    request_timeout_seconds: float = 60.0
    max_tokens: int = 400
    temperature: float = 0.0

    def __post_init__(self) -> None:
        if not self.base_url.startswith(("http://", "https://")):
            raise ValueError("LlmSettings.base_url: must start with http:// or https://")
        if not self.model:
            raise ValueError("LlmSettings.model: must not be empty")
        for name in ("max_concurrency", "max_tokens"):
            if getattr(self, name) < 1:
                raise ValueError(f"LlmSettings.{name}: must be at least 1")
        for name in ("queue_timeout_seconds", "request_timeout_seconds"):
            if not getattr(self, name) > 0:
                raise ValueError(f"LlmSettings.{name}: must be positive")
        if not 0.0 <= self.temperature <= 2.0:
            raise ValueError("LlmSettings.temperature: must be between 0 and 2")

    @property
    def completions_url(self) -> str:
        return f"{self.base_url.rstrip('/')}/chat/completions"

    @property
    def busy_retry_after_seconds(self) -> int:
        """``Retry-After`` for :class:`LlmBusy`: one queue window, so a retry waits afresh."""
        return max(1, math.ceil(self.queue_timeout_seconds))


class LlmFailure(StrEnum):
    """Why a call failed; stable values for logs and metric labels."""

    BUSY = "busy"
    CONNECT = "connect"
    TIMEOUT = "timeout"
    HTTP_STATUS = "http_status"
    MALFORMED = "malformed"


# The runtime maps these two by name (503 + Retry-After); "Error" would add nothing.
class LlmBusy(TransientError):  # noqa: N818
    """No concurrency slot freed within the queue timeout; retry after ``retry_after_seconds``."""

    code = "llm_busy"

    def __init__(self, waited_seconds: float, retry_after_seconds: int) -> None:
        self.retry_after_seconds = retry_after_seconds
        super().__init__(f"llm busy: no slot free after {waited_seconds:g}s in the queue")


class LlmUnavailable(TransientError):  # noqa: N818
    """The endpoint failed: ``reason`` says how; ``http_status`` is set for HTTP_STATUS."""

    code = "llm_unavailable"

    def __init__(self, reason: LlmFailure, detail: str, http_status: int | None = None) -> None:
        self.reason = reason
        self.http_status = http_status
        super().__init__(f"llm unavailable ({reason.value}): {detail}")


# --- wire format (pure) ----------------------------------------------------------------------


def request_body(settings: LlmSettings, messages: Sequence[ChatMessage]) -> dict[str, object]:
    """The JSON body of ``POST /chat/completions``."""
    return {
        "model": settings.model,
        "messages": [{"role": m.role, "content": m.content} for m in messages],
        "temperature": settings.temperature,
        "max_tokens": settings.max_tokens,
    }


@dataclass(frozen=True, slots=True)
class _Reply:
    text: str
    model: str
    prompt_tokens: int | None
    completion_tokens: int | None


def _parse_reply(body: bytes, default_model: str) -> _Reply:
    """Parse an OpenAI chat completion; ``LlmUnavailable(MALFORMED)`` says what is missing.

    Only ``choices[0].message.content`` is required; ``model`` and ``usage`` are optional.
    """
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        # from None: the decoder's error carries the body, which may echo the prompt.
        raise LlmUnavailable(LlmFailure.MALFORMED, "response is not JSON") from None
    choices = data.get("choices") if isinstance(data, dict) else None
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        raise LlmUnavailable(LlmFailure.MALFORMED, "response has no choices")
    message = choices[0].get("message")
    content = message.get("content") if isinstance(message, dict) else None
    if not isinstance(content, str):
        raise LlmUnavailable(LlmFailure.MALFORMED, "choices[0].message.content is not text")
    model = data.get("model")
    usage = data.get("usage")
    usage = usage if isinstance(usage, dict) else {}
    return _Reply(
        text=content,
        model=model if isinstance(model, str) and model else default_model,
        prompt_tokens=_count(usage.get("prompt_tokens")),
        completion_tokens=_count(usage.get("completion_tokens")),
    )


def _count(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


# --- gateway (I/O) ---------------------------------------------------------------------------


class LlmGateway:
    """Calls the endpoint with at most ``max_concurrency`` requests in flight.

    Event loop: the semaphore (and the HTTP client, unless one is injected) is created on the
    first :meth:`complete`, in the running loop, and the gateway stays bound to that loop (the
    server's); a call from another loop raises ``RuntimeError``. Build one gateway per loop.

    ``in_flight`` (holding a slot) and ``waiting`` (queued for one) are plain ints changed only
    in that loop; reading them from another thread (a metrics scrape) is safe in CPython.

    An injected ``client`` belongs to the caller: :meth:`aclose` closes only a client the
    gateway created itself.
    """

    def __init__(self, settings: LlmSettings, client: httpx.AsyncClient | None = None) -> None:
        self._settings = settings
        self._client = client
        self._owns_client = client is None
        self._semaphore: asyncio.Semaphore | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closed = False
        self._in_flight = 0
        self._waiting = 0

    @property
    def settings(self) -> LlmSettings:
        return self._settings

    @property
    def in_flight(self) -> int:
        return self._in_flight

    @property
    def waiting(self) -> int:
        return self._waiting

    async def complete(self, messages: Sequence[ChatMessage]) -> Completion:
        """The model's reply to ``messages``.

        Raises :class:`LlmBusy` after ``queue_timeout_seconds`` without a slot and
        :class:`LlmUnavailable` for any failure of the exchange. Logs one ``llm.call`` line.
        """
        semaphore, client = self._bind()
        settings = self._settings
        queued = time.perf_counter()
        self._waiting += 1
        try:
            await asyncio.wait_for(semaphore.acquire(), settings.queue_timeout_seconds)
        except TimeoutError:
            queue_ms = _ms_since(queued)
            self._log(LlmFailure.BUSY.value, queue_ms, 0.0, None)
            raise LlmBusy(
                settings.queue_timeout_seconds, settings.busy_retry_after_seconds
            ) from None
        finally:
            self._waiting -= 1
        queue_ms = _ms_since(queued)
        self._in_flight += 1
        started = time.perf_counter()
        try:
            reply = await self._exchange(client, messages)
        except LlmUnavailable as exc:
            self._log(exc.reason.value, queue_ms, _ms_since(started), exc.http_status)
            raise
        finally:
            self._in_flight -= 1
            semaphore.release()
        llm_ms = _ms_since(started)
        self._log("ok", queue_ms, llm_ms, 200)
        return Completion(
            text=reply.text,
            model=reply.model,
            prompt_tokens=reply.prompt_tokens,
            completion_tokens=reply.completion_tokens,
            queue_ms=queue_ms,
            llm_ms=llm_ms,
        )

    async def aclose(self) -> None:
        """Close the HTTP client if the gateway created it; later calls raise ``RuntimeError``."""
        self._closed = True
        if self._owns_client and self._client is not None:
            await self._client.aclose()

    async def _exchange(self, client: httpx.AsyncClient, messages: Sequence[ChatMessage]) -> _Reply:
        settings = self._settings
        headers = {"Accept": "application/json"}
        if settings.api_key is not None:
            headers["Authorization"] = f"Bearer {settings.api_key.reveal()}"
        try:
            # httpx bounds each phase; asyncio.timeout bounds the whole exchange.
            async with asyncio.timeout(settings.request_timeout_seconds):
                response = await client.post(
                    settings.completions_url,
                    json=request_body(settings, messages),
                    headers=headers,
                )
        except (TimeoutError, httpx.TimeoutException):
            detail = f"no reply within {settings.request_timeout_seconds:g}s"
            raise LlmUnavailable(LlmFailure.TIMEOUT, detail) from None
        except httpx.TransportError as exc:
            # The class name only: transport messages are safe today, but nothing requires it.
            raise LlmUnavailable(LlmFailure.CONNECT, type(exc).__name__) from None
        if not response.is_success:
            # The body is not quoted: providers echo the request in their errors.
            raise LlmUnavailable(
                LlmFailure.HTTP_STATUS,
                f"HTTP {response.status_code}",
                http_status=response.status_code,
            )
        return _parse_reply(response.content, settings.model)

    def _bind(self) -> tuple[asyncio.Semaphore, httpx.AsyncClient]:
        if self._closed:
            raise RuntimeError("LlmGateway is closed")
        loop = asyncio.get_running_loop()
        if self._loop is None:
            self._loop = loop
            self._semaphore = asyncio.Semaphore(self._settings.max_concurrency)
            if self._client is None:
                self._client = httpx.AsyncClient(
                    timeout=self._settings.request_timeout_seconds,
                    limits=httpx.Limits(max_connections=self._settings.max_concurrency),
                )
        elif self._loop is not loop:
            raise RuntimeError("LlmGateway is bound to the event loop that first used it")
        assert self._semaphore is not None
        assert self._client is not None
        return self._semaphore, self._client

    def _log(self, status: str, queue_ms: float, llm_ms: float, http_status: int | None) -> None:
        log_event(
            log,
            "llm.call",
            level=logging.INFO if status == "ok" else logging.WARNING,
            model=self._settings.model,
            status=status,
            http_status=http_status,
            queue_ms=round(queue_ms, 1),
            llm_ms=round(llm_ms, 1),
        )


def _ms_since(start: float) -> float:
    return (time.perf_counter() - start) * 1000.0
