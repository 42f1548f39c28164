"""The probe port: one check of one region over one protocol.

Every adapter keeps these invariants:

- ``probe`` never raises (cancellation of the caller's task aside): every failure, including
  a bug in the adapter's parsing, becomes a :class:`ProbeResult` with ``ok`` false, a stable
  code and a one-sentence reason without secrets.
- ``probe`` returns within about ``timeout_seconds``; past it the result has code
  ``"timeout"``. ``controller.probing.run_round`` enforces the deadline again, so one
  misbehaving adapter cannot stall a round.
- ``result.target`` and ``result.kind`` equal the probe's own ``target`` and ``kind``.
- A probe may be run many times, and concurrently; it keeps no state between runs apart
  from shared connection pools.
"""

from __future__ import annotations

from typing import Protocol

from switchyard.domain.probe import ProbeKind, ProbeResult


class Probe(Protocol):
    """A check of ``target`` (a region name) that always yields a result."""

    @property
    def target(self) -> str:
        """The region this probe observes."""
        ...

    @property
    def kind(self) -> ProbeKind:
        """The protocol it speaks."""
        ...

    async def probe(self, timeout_seconds: float) -> ProbeResult:
        """Check once; a result within about ``timeout_seconds``, never an exception."""
        ...
