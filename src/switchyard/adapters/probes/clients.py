"""The connection pools probes share: one aiohttp session for every HTTP and canary probe.

Keep-alive matters: measured at 100 concurrent probes, aiohttp reuses connections at several
thousand probes/s per core where a new connection per probe costs more than half of that
(bench/probe_engine.py prints today's figures).
"""

from __future__ import annotations

from types import TracebackType
from typing import Self

import aiohttp

from switchyard.domain.probe import VANTAGE_HEADER

USER_AGENT = "switchyard-probe"


class ProbeClients:
    """Owns the one :class:`aiohttp.ClientSession` that HTTP probes share, and closes it.

    Invariants:

    - Building one opens nothing; the session is created by the first :meth:`http` call, which
      must run inside the event loop that will use it (a session is bound to its loop).
    - The pool holds up to ``max_connections`` connections (no per-host cap), kept alive for
      ``keepalive_seconds`` between rounds, so a round of ~200 concurrent probes neither queues
      on the pool nor reconnects every time.
    - The session sends no cookies back, follows no proxy settings from the environment, and
      has no timeout of its own: each probe enforces its deadline.
    - After :meth:`aclose` the next :meth:`http` call opens a fresh session.
    - With a ``vantage``, every request carries it in ``X-Switchyard-Vantage``: a runtime
      keeps renewing its database login only while such probes reach it.
    """

    def __init__(
        self,
        *,
        max_connections: int = 512,
        keepalive_seconds: float = 30.0,
        vantage: str | None = None,
    ) -> None:
        if max_connections < 1:
            raise ValueError(f"max_connections must be >= 1, got {max_connections}")
        self._max_connections = max_connections
        self._keepalive_seconds = keepalive_seconds
        self._headers = {"User-Agent": USER_AGENT}
        if vantage is not None:
            self._headers[VANTAGE_HEADER] = vantage
        self._session: aiohttp.ClientSession | None = None

    def http(self) -> aiohttp.ClientSession:
        """The shared session, opened on first use in the running loop."""
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(
                limit=self._max_connections,
                limit_per_host=0,
                keepalive_timeout=self._keepalive_seconds,
            )
            self._session = aiohttp.ClientSession(
                connector=connector,
                timeout=aiohttp.ClientTimeout(total=None),
                cookie_jar=aiohttp.DummyCookieJar(),
                headers=self._headers,
                trust_env=False,
            )
        return self._session

    async def aclose(self) -> None:
        """Close the session and its connections; harmless when none was opened."""
        session, self._session = self._session, None
        if session is not None:
            await session.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()
