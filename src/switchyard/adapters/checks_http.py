"""RegionChecks over HTTP: a runtime's ``/readyz`` and its canary, for the saga's checks.

The saga runs in a worker thread, a few calls per failover, so a plain synchronous httpx
client is right here; the probe engine (many probes a second) uses aiohttp instead.
"""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import urlsplit

import httpx

from switchyard.ports.regions import CheckResult
from switchyard.topology import CanarySpec, RegionSpec


class HttpRegionChecks:
    def __init__(
        self, regions: Mapping[str, RegionSpec], canary: CanarySpec | None, timeout: float
    ) -> None:
        self._regions = dict(regions)
        self._canary = canary
        self._client = httpx.Client(timeout=timeout)

    def readiness(self, region: str) -> CheckResult:
        url = str(self._regions[region].runtime_url).rstrip("/") + "/readyz"
        try:
            response = self._client.get(url)
            body = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            return CheckResult(False, f"{url}: {type(exc).__name__}: {exc}", "unreachable")
        role, epoch = body.get("role"), body.get("epoch")
        if response.status_code != 200 or not body.get("ready"):
            failing = [k for k, v in (body.get("checks") or {}).items() if v != "ok"]
            return CheckResult(
                False,
                f"{region} not ready (HTTP {response.status_code}; failing: "
                f"{', '.join(failing) or 'unknown'})",
                "not_ready",
                role,
                epoch,
            )
        return CheckResult(True, f"{region} ready as {role} at epoch {epoch}", "ok", role, epoch)

    def canary(self, region: str, address: str) -> CheckResult:
        spec = urlsplit(str(self._regions[region].runtime_url))
        host = f"[{address}]" if ":" in address else address
        url = f"{spec.scheme}://{host}:{spec.port or 80}/v1/canary"
        if self._canary is None:
            # No golden question configured: a ready runtime at that address is the best proof.
            try:
                ok = self._client.get(url.replace("/v1/canary", "/readyz")).status_code == 200
            except httpx.HTTPError as exc:
                return CheckResult(False, f"{address}: {type(exc).__name__}", "unreachable")
            return CheckResult(ok, f"{address} ready" if ok else f"{address} not ready")
        try:
            response = self._client.get(url, params={"q": self._canary.question})
            body = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            return CheckResult(False, f"{url}: {type(exc).__name__}: {exc}", "unreachable")
        cited = body.get("cited_documents") or []
        if response.status_code != 200 or self._canary.expected_document not in cited:
            return CheckResult(
                False,
                f"canary at {address} cited {cited or 'nothing'}, expected "
                f"{self._canary.expected_document}",
                "not_cited",
                body.get("role"),
                body.get("epoch"),
            )
        return CheckResult(
            True,
            f"canary at {address} cited {self._canary.expected_document}",
            "ok",
            body.get("role"),
            body.get("epoch"),
        )

    def close(self) -> None:
        self._client.close()
