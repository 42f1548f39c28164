"""Contact with the control plane, as a runtime sees it: controllers' probes arriving.

A runtime renews its database login (see ``switchyard.adapters.credential_keeper``) only while
the control plane is in touch: a probe carrying ``X-Switchyard-Vantage`` (every controller's
probes do) arrived within ``timeout_seconds``. A runtime cut off from every vantage point
therefore loses its login at most ``timeout_seconds`` plus one lease TTL after the last probe
reached it, even when it can still reach Vault — which is what the controller's
``isolation_timeout`` fence proof relies on (set it at least that long). The process's start
counts as contact, so a runtime starting before its controllers is not fenced at once.

The header is a liveness signal, not an authentication: a client that sends it keeps a
runtime renewing, exactly as a controller would.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from switchyard.domain.probe import VANTAGE_HEADER

_HEADER = VANTAGE_HEADER.lower().encode("latin-1")

Scope = dict[str, Any]
Asgi = Callable[[Scope, Any, Any], Any]


class ControlPlaneContact:
    """When a controller's probe last arrived; thread-safe."""

    def __init__(
        self, timeout_seconds: float, *, monotonic: Callable[[], float] = time.monotonic
    ) -> None:
        if timeout_seconds <= 0:
            raise ValueError(f"timeout_seconds must be > 0, got {timeout_seconds}")
        self.timeout_seconds = timeout_seconds
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._last = monotonic()

    def seen(self) -> None:
        now = self._monotonic()
        with self._lock:
            self._last = now

    def withheld(self) -> str | None:
        """Why renewing the database login must wait (no contact for too long), or None."""
        with self._lock:
            age = self._monotonic() - self._last
        if age <= self.timeout_seconds:
            return None
        return (
            f"no controller has probed this runtime for {age:.0f} s (limit "
            f"{self.timeout_seconds:.0f} s): an isolated runtime lets its database login lapse"
        )


class ContactMiddleware:
    """Plain ASGI middleware: marks contact when a request carries the vantage header."""

    def __init__(self, app: Asgi, *, contact: ControlPlaneContact) -> None:
        self.app = app
        self._contact = contact

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and any(key == _HEADER for key, _ in scope["headers"]):
            self._contact.seen()
        await self.app(scope, receive, send)
