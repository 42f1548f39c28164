"""One probe round: every probe at once, one result each, on time, whatever the probes do.

Invariants of :func:`run_round`:

- It returns exactly one result per probe, in the order of ``probes``, and never raises
  (cancellation of the caller aside, which cancels every probe still running).
- It returns within ``timeout_seconds + grace_seconds`` even if a probe ignores its own
  deadline, swallows cancellation or blocks on cleanup: such a probe is cancelled and left
  behind, and its result has code ``timeout``. The grace lets a well-behaved probe report its
  own, more precise timeout first.
- A probe that raises, or returns something that is not a ``ProbeResult``, gets a result with
  code ``error`` naming the exception's type only (its message might carry a secret).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

from switchyard.domain.probe import ProbeCode, ProbeResult
from switchyard.domain.secrets import Secret
from switchyard.ports.probe import Probe
from switchyard.topology import ProbePolicy, RegionSpec

if TYPE_CHECKING:
    from switchyard.adapters.probes import ProbeClients

GRACE_SECONDS = 0.1
"""How long past its own deadline a probe may take before the round stops waiting for it."""


async def run_round(
    probes: Sequence[Probe], timeout_seconds: float, *, grace_seconds: float = GRACE_SECONDS
) -> list[ProbeResult]:
    """Run every probe concurrently with ``timeout_seconds`` each; see the module invariants."""
    if not probes:
        return []
    start = time.perf_counter()
    tasks = [asyncio.ensure_future(_guarded(p, timeout_seconds)) for p in probes]
    try:
        # asyncio.wait, not wait_for/gather: it does not wait for a cancelled probe to finish,
        # so a probe that swallows cancellation cannot hold the round.
        await asyncio.wait(tasks, timeout=timeout_seconds + grace_seconds)
    finally:
        for task in tasks:
            if not task.done():
                task.cancel()
                task.add_done_callback(_discard)
    waited_ms = (time.perf_counter() - start) * 1000
    return [
        task.result() if task.done() and not task.cancelled() else _late(probe, waited_ms)
        for probe, task in zip(probes, tasks, strict=True)
    ]


async def _guarded(probe: Probe, timeout_seconds: float) -> ProbeResult:
    start = time.perf_counter()
    try:
        result: object = await probe.probe(timeout_seconds)
    except Exception as exc:  # the port says never; this keeps the round whole if one does
        return _failed(probe, start, f"raised {type(exc).__name__} instead of returning a result")
    if not isinstance(result, ProbeResult):
        return _failed(probe, start, f"returned a {type(result).__name__}, not a ProbeResult")
    return result


def _failed(probe: Probe, start: float, what: str) -> ProbeResult:
    return ProbeResult(
        target=probe.target,
        kind=probe.kind,
        ok=False,
        latency_ms=(time.perf_counter() - start) * 1000,
        code=ProbeCode.ERROR.value,
        reason=f"{probe.kind} probe of {probe.target} {what}",
    )


def _late(probe: Probe, waited_ms: float) -> ProbeResult:
    return ProbeResult(
        target=probe.target,
        kind=probe.kind,
        ok=False,
        latency_ms=waited_ms,
        code=ProbeCode.TIMEOUT.value,
        reason=(
            f"{probe.kind} probe of {probe.target} gave no result within {waited_ms:.0f} ms"
            " and was cancelled"
        ),
    )


def _discard(task: asyncio.Future[ProbeResult]) -> None:
    # Retrieve whatever a cancelled-but-defiant probe ends with, so asyncio does not log
    # "exception was never retrieved" long after its round.
    if not task.cancelled():
        task.exception()


def probes_for_region(
    spec: RegionSpec,
    policy: ProbePolicy,
    clients: ProbeClients,
    db_dsn: Secret | None,
) -> list[Probe]:
    """The probes one vantage runs against region ``spec`` every round.

    In order: HTTP ``/healthz`` of the runtime, TCP to the runtime's host and port, PostgreSQL
    (``region_state`` of the region; only when ``db_dsn`` is given) and the canary (only when
    ``policy.canary`` is set). Readiness (``/readyz``) is read separately, not here.
    Building them opens nothing.
    """
    from switchyard.adapters.probes import CanaryProbe, HttpProbe, PostgresProbe, TcpProbe

    base = str(spec.runtime_url)
    url = spec.runtime_url
    port = url.port or (443 if url.scheme == "https" else 80)
    probes: list[Probe] = [
        HttpProbe(spec.name, base.rstrip("/") + "/healthz", clients=clients),
        TcpProbe(spec.name, (url.host or "").strip("[]"), port),
    ]
    if db_dsn is not None:
        probes.append(PostgresProbe(spec.name, db_dsn, region=spec.name))
    if policy.canary is not None:
        probes.append(
            CanaryProbe(
                spec.name,
                base,
                policy.canary.question,
                policy.canary.expected_document,
                clients=clients,
            )
        )
    return probes
