"""RegionChecks over HTTP: the saga's readiness and golden-question checks, made by the same
probes the controllers run every round (one code path for what "ready" and "answers" mean).

The saga runs in a worker thread, a few checks per failover, so each check runs its probe in a
short event loop of its own with its own connection.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from urllib.parse import urlsplit

from switchyard.adapters.probes import CanaryProbe, ProbeClients, ReadinessProbe
from switchyard.domain.probe import ProbeResult
from switchyard.ports.probe import Probe
from switchyard.topology import CanarySpec, RegionSpec


class HttpRegionChecks:
    def __init__(
        self, regions: Mapping[str, RegionSpec], canary: CanarySpec | None, timeout: float
    ) -> None:
        self._regions = dict(regions)
        self._canary = canary
        self._timeout = timeout

    def readiness(self, region: str) -> ProbeResult:
        url = str(self._regions[region].runtime_url)
        return self._run(lambda clients: ReadinessProbe(region, url, clients=clients))

    def canary(self, region: str, address: str) -> ProbeResult:
        """The golden question at ``address`` on the region's runtime port; without a
        configured question, the runtime's readiness at that address."""
        spec = urlsplit(str(self._regions[region].runtime_url))
        host = f"[{address}]" if ":" in address else address
        url = f"{spec.scheme}://{host}:{spec.port or 80}"
        canary = self._canary
        if canary is None:
            return self._run(lambda clients: ReadinessProbe(region, url, clients=clients))
        return self._run(
            lambda clients: CanaryProbe(
                region, url, canary.question, canary.expected_document, clients=clients
            )
        )

    def _run(self, build: Callable[[ProbeClients], Probe]) -> ProbeResult:
        async def once() -> ProbeResult:
            async with ProbeClients(max_connections=2) as clients:
                return await build(clients).probe(self._timeout)

        return asyncio.run(once())
