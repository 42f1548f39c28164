"""What every probe adapter shares: the deadline, the timing, and turning failures into codes.

Invariants:

- :func:`measured` never raises apart from the caller's own cancellation: its deadline ends
  as code ``timeout``, a refused connection as ``connect_refused``, anything else as ``error``
  with the exception's type and one line of its message.
- Reasons pass through :func:`one_line`, which removes every secret the adapter names, so a
  driver that echoes a password or a DSN cannot leak it.
"""

from __future__ import annotations

import asyncio
import errno
import time
from collections.abc import Awaitable, Iterable
from dataclasses import dataclass

from switchyard.domain.probe import ProbeCode, ProbeKind, ProbeResult
from switchyard.domain.secrets import MASK

MAX_REASON_CHARS = 300


@dataclass(frozen=True, slots=True)
class Verdict:
    """What a check concluded, before timing is added."""

    code: ProbeCode
    reason: str
    role: str | None = None
    epoch: int | None = None


def one_line(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` on one line, each non-empty secret replaced by the mask, capped in length."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, MASK)
    flat = " ".join(text.split())
    if len(flat) > MAX_REASON_CHARS:
        flat = flat[: MAX_REASON_CHARS - 1] + "…"
    return flat


def refused(exc: BaseException) -> bool:
    """Whether ``exc`` (or what caused it) is a refused connection."""
    seen: BaseException | None = exc
    for _ in range(5):  # a short chain: drivers wrap the OS error once or twice
        if seen is None:
            return False
        if isinstance(seen, OSError) and seen.errno == errno.ECONNREFUSED:
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def failure(exc: Exception, action: str, secrets: Iterable[str] = ()) -> Verdict:
    """The verdict for an exception that ended ``action`` (e.g. ``GET http://host/healthz``)."""
    if refused(exc):
        return Verdict(ProbeCode.CONNECT_REFUSED, f"{action}: connection refused")
    detail = one_line(str(exc), secrets)
    name = type(exc).__name__
    return Verdict(ProbeCode.ERROR, f"{action} failed: {name}: {detail}" if detail else name)


async def measured(
    target: str,
    kind: ProbeKind,
    timeout_seconds: float,
    check: Awaitable[Verdict],
    action: str,
    secrets: Iterable[str] = (),
) -> ProbeResult:
    """Await ``check`` under a ``timeout_seconds`` deadline and time it; never raises."""
    start = time.perf_counter()
    try:
        async with asyncio.timeout(timeout_seconds):
            verdict = await check
    except TimeoutError:
        verdict = Verdict(ProbeCode.TIMEOUT, f"{action}: no answer within {timeout_seconds:g} s")
    except Exception as exc:  # a probe reports, it never raises
        verdict = failure(exc, action, secrets)
    return ProbeResult(
        target=target,
        kind=kind,
        ok=verdict.code is ProbeCode.OK,
        latency_ms=(time.perf_counter() - start) * 1000,
        code=verdict.code.value,
        reason=verdict.reason,
        role=verdict.role,
        epoch=verdict.epoch,
    )
