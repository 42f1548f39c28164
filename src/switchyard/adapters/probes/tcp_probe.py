"""The TCP probe: can a connection to ``host:port`` be opened at all?"""

from __future__ import annotations

import asyncio
import contextlib

from switchyard.adapters.probes.outcome import Verdict, measured
from switchyard.domain.probe import ProbeCode, ProbeKind, ProbeResult


class TcpProbe:
    """Open a TCP connection to ``host:port`` and close it; ok when the connection opens."""

    __slots__ = ("_action", "host", "kind", "port", "target")

    def __init__(self, target: str, host: str, port: int) -> None:
        self.target = target
        self.kind = ProbeKind.TCP
        self.host = host
        self.port = port
        self._action = f"TCP connect to {host}:{port}"

    async def probe(self, timeout_seconds: float) -> ProbeResult:
        return await measured(self.target, self.kind, timeout_seconds, self._check(), self._action)

    async def _check(self) -> Verdict:
        _, writer = await asyncio.open_connection(self.host, self.port)
        writer.close()
        # A reset while closing says nothing about whether the port accepts connections.
        with contextlib.suppress(OSError):
            await writer.wait_closed()
        return Verdict(ProbeCode.OK, f"{self._action} opened")
