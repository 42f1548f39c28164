"""Tool handlers: the actions a dialog flow performs in other systems (open an IT ticket).

Contract (``ToolHandler``): ``call`` never raises for a failure of the other system. It
returns a ``ToolOutcome`` whose ``error_code`` is stable (for metrics labels, logs and tests)
and whose ``detail`` is a sentence for operators; the user sees the manager's ``tool_reply``,
never ``detail``. ``ToolRegistry.call`` enforces the contract for any handler, so a broken
handler still yields a polite answer, never a 500.

Error codes: ``timeout``, ``unreachable``, ``http_<status>``, ``bad_response``,
``bad_arguments``, ``not_configured``, ``internal``.

Logs carry the tool, the code, the endpoint's host and argument *sizes*: a summary is the
user's own words and may hold anything, so it is never logged verbatim.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Protocol

import httpx

from switchyard.errors import ConfigError
from switchyard.observability.logging import log_event

OPEN_TICKET = "open_ticket"
TICKET_FIELDS = ("category", "summary", "urgency")
_MAX_REFERENCE_CHARS = 64

_log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ToolOutcome:
    """What a tool call achieved. Invariant: ``ok`` iff ``error_code is None``; a successful
    ticket call has a ``reference`` (the ticket id)."""

    ok: bool
    reference: str | None
    detail: str
    error_code: str | None

    def __post_init__(self) -> None:
        if self.ok != (self.error_code is None):
            raise ValueError("a ToolOutcome is ok exactly when it has no error_code")

    @classmethod
    def failed(cls, error_code: str, detail: str) -> ToolOutcome:
        return cls(ok=False, reference=None, detail=detail, error_code=error_code)


class ToolHandler(Protocol):
    """One tool. ``call`` returns a failed outcome instead of raising (see the module doc)."""

    name: str

    async def call(self, arguments: Mapping[str, str]) -> ToolOutcome: ...


class HttpTicketTool:
    """Opens an IT ticket by POSTing JSON to a configured endpoint.

    Request: ``{"category", "summary", "urgency", "source": "switchyard-dialog"}``. Success is
    a 2xx answer whose JSON object has a non-empty ``id`` (or ``ticket_id``) string or integer.
    With no ``client``, each call uses a short-lived one (tools are called rarely); pass a shared
    ``httpx.AsyncClient`` to reuse connections — its lifetime is then the caller's.
    """

    def __init__(
        self,
        endpoint_url: str,
        timeout_seconds: float = 5.0,
        client: httpx.AsyncClient | None = None,
        *,
        name: str = OPEN_TICKET,
        logger: logging.Logger | None = None,
    ) -> None:
        self.name = name
        self._url = _endpoint(endpoint_url)
        if not timeout_seconds > 0:
            raise ConfigError("dialog tools", f"{name}.timeout_seconds", "must be positive")
        self._timeout = timeout_seconds
        self._client = client
        self._log = logger or _log

    def __repr__(self) -> str:
        return f"HttpTicketTool(name={self.name!r}, host={self._url.host!r})"

    async def call(self, arguments: Mapping[str, str]) -> ToolOutcome:
        missing = [f for f in TICKET_FIELDS if not arguments.get(f, "").strip()]
        if missing:
            outcome = ToolOutcome.failed("bad_arguments", f"missing {', '.join(missing)}")
            return self._failed(outcome, arguments)
        payload = {f: arguments[f] for f in TICKET_FIELDS} | {"source": "switchyard-dialog"}
        try:
            response = await self._post(payload)
        except httpx.TimeoutException:
            outcome = ToolOutcome.failed("timeout", f"no answer within {self._timeout:g}s")
        except httpx.TransportError as exc:
            outcome = ToolOutcome.failed("unreachable", f"transport error: {type(exc).__name__}")
        except httpx.DecodingError:
            outcome = ToolOutcome.failed("bad_response", "answer body could not be decoded")
        except httpx.HTTPError as exc:
            outcome = ToolOutcome.failed("unreachable", f"request failed: {type(exc).__name__}")
        else:
            outcome = _read_ticket(response)
        if not outcome.ok:
            return self._failed(outcome, arguments)
        log_event(self._log, "tool.called", tool=self.name, reference=outcome.reference)
        return outcome

    async def _post(self, payload: Mapping[str, str]) -> httpx.Response:
        if self._client is not None:
            return await self._client.post(self._url, json=payload, timeout=self._timeout)
        async with httpx.AsyncClient(timeout=self._timeout) as client:
            return await client.post(self._url, json=payload)

    def _failed(self, outcome: ToolOutcome, arguments: Mapping[str, str]) -> ToolOutcome:
        log_event(
            self._log,
            "tool.failed",
            level=logging.WARNING,
            tool=self.name,
            error_code=outcome.error_code,
            detail=outcome.detail,
            host=self._url.host,
            category=arguments.get("category"),
            urgency=arguments.get("urgency"),
            summary_chars=len(arguments.get("summary", "")),
        )
        return outcome


class ToolRegistry:
    """Tools by name. ``call`` never raises: an unknown tool fails as ``not_configured`` and a
    handler that raises despite its contract fails as ``internal``; both are logged."""

    def __init__(
        self, handlers: Iterable[ToolHandler] = (), *, logger: logging.Logger | None = None
    ) -> None:
        self._handlers: dict[str, ToolHandler] = {}
        for handler in handlers:
            if handler.name in self._handlers:
                raise ConfigError("dialog tools", handler.name, "configured twice")
            self._handlers[handler.name] = handler
        self._log = logger or _log

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(sorted(self._handlers))

    def __contains__(self, name: object) -> bool:
        return name in self._handlers

    def get(self, name: str) -> ToolHandler | None:
        return self._handlers.get(name)

    async def call(self, name: str, arguments: Mapping[str, str]) -> ToolOutcome:
        handler = self._handlers.get(name)
        if handler is None:
            outcome = ToolOutcome.failed("not_configured", "no handler is configured")
            log_event(
                self._log,
                "tool.failed",
                level=logging.WARNING,
                tool=name,
                error_code=outcome.error_code,
                detail=outcome.detail,
            )
            return outcome
        try:
            return await handler.call(arguments)
        # The one place a handler's bug is contained: the user gets the polite failure text
        # and the traceback goes to the log, rather than the request failing with a 500.
        except Exception:
            fields = {"tool": name, "error_code": "internal", "detail": "handler raised"}
            self._log.exception("tool.failed", extra={"fields": fields})
            return ToolOutcome.failed("internal", "handler raised")


class InMemoryTicketTool:
    """The in-memory twin of ``HttpTicketTool`` for scenario tests: records every call and
    answers ``IT-1``, ``IT-2``, ... or fails with ``fail_with`` when set."""

    def __init__(self, *, name: str = OPEN_TICKET, fail_with: str | None = None) -> None:
        self.name = name
        self.fail_with = fail_with
        self.calls: list[dict[str, str]] = []

    async def call(self, arguments: Mapping[str, str]) -> ToolOutcome:
        self.calls.append(dict(arguments))
        if self.fail_with is not None:
            return ToolOutcome.failed(self.fail_with, "configured to fail")
        reference = f"IT-{len(self.calls)}"
        return ToolOutcome(ok=True, reference=reference, detail="recorded", error_code=None)


def _endpoint(url: str) -> httpx.URL:
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL as exc:
        raise ConfigError("dialog tools", "endpoint_url", "is not a valid URL") from exc
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise ConfigError("dialog tools", "endpoint_url", "must be an http(s) URL with a host")
    return parsed


def _read_ticket(response: httpx.Response) -> ToolOutcome:
    if not response.is_success:
        status = response.status_code
        return ToolOutcome.failed(f"http_{status}", f"endpoint answered HTTP {status}")
    try:
        body = response.json()
    except ValueError:
        return ToolOutcome.failed("bad_response", "answer is not JSON")
    raw = body.get("id", body.get("ticket_id")) if isinstance(body, dict) else None
    if isinstance(raw, bool) or not isinstance(raw, str | int):
        return ToolOutcome.failed("bad_response", "answer has no id or ticket_id")
    reference = str(raw).strip()
    if not reference or len(reference) > _MAX_REFERENCE_CHARS or not reference.isprintable():
        return ToolOutcome.failed("bad_response", "ticket id is empty, too long or unprintable")
    return ToolOutcome(ok=True, reference=reference, detail="ticket opened", error_code=None)
