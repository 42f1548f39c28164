"""A probe round (controller.probing) and the result rules every probe shares.

Fake probes stand in for the real ones; deadlines are a few milliseconds, and nothing here
asserts how long anything took beyond "the round returned".
"""

from __future__ import annotations

import asyncio
import errno
from collections.abc import Awaitable, Callable

import pytest

from switchyard.adapters.probes import (
    CanaryProbe,
    HttpProbe,
    PostgresProbe,
    ProbeClients,
    TcpProbe,
)
from switchyard.adapters.probes.outcome import Verdict, measured, one_line, refused
from switchyard.controller.probing import probes_for_region, run_round
from switchyard.devenv.layout import repo_root
from switchyard.domain.probe import ProbeCode, ProbeKind, ProbeResult
from switchyard.domain.secrets import MASK, Secret
from switchyard.ports.probe import Probe
from switchyard.topology import CanarySpec, ProbePolicy, load_topology

TINY = 0.02  # seconds: deadline for probes that are meant to miss it


def ok(target: str, kind: ProbeKind = ProbeKind.HTTP) -> ProbeResult:
    return ProbeResult(target, kind, True, 1.0, ProbeCode.OK, f"{target} answered")


class FakeProbe:
    """A probe whose behaviour is the coroutine function it is given."""

    def __init__(
        self,
        target: str,
        behaviour: Callable[[float], Awaitable[object]],
        kind: ProbeKind = ProbeKind.HTTP,
    ) -> None:
        self.target = target
        self.kind = kind
        self._behaviour = behaviour

    async def probe(self, timeout_seconds: float) -> ProbeResult:
        return await self._behaviour(timeout_seconds)  # type: ignore[return-value]


def answers(target: str, after: float = 0.0) -> FakeProbe:
    async def run(_: float) -> ProbeResult:
        await asyncio.sleep(after)
        return ok(target)

    return FakeProbe(target, run)


def hangs(target: str) -> FakeProbe:
    async def run(_: float) -> ProbeResult:
        await asyncio.sleep(3600)  # ignores its deadline
        raise AssertionError("unreachable")

    return FakeProbe(target, run)


def raises(target: str, exc: Exception) -> FakeProbe:
    async def run(_: float) -> ProbeResult:
        raise exc

    return FakeProbe(target, run, kind=ProbeKind.POSTGRES)


def round_of(probes: list[Probe], timeout: float = 1.0, grace: float = TINY) -> list[ProbeResult]:
    return asyncio.run(run_round(probes, timeout, grace_seconds=grace))


# --- run_round ---------------------------------------------------------------------------------


def test_results_come_back_in_probe_order_not_completion_order() -> None:
    probes: list[Probe] = [answers("slow", 0.03), answers("mid", 0.01), answers("fast")]

    results = round_of(probes)

    assert [r.target for r in results] == ["slow", "mid", "fast"]
    assert all(r.ok for r in results)


def test_probes_run_concurrently() -> None:
    # Each probe waits for all three to have started: run one at a time, none would finish.
    started = 0
    all_started = asyncio.Event()

    async def meet(_: float) -> ProbeResult:
        nonlocal started
        started += 1
        if started == 3:
            all_started.set()
        await all_started.wait()
        return ok("r")

    results = round_of([FakeProbe("r", meet) for _ in range(3)], timeout=5.0)

    assert [r.code for r in results] == ["ok"] * 3


def test_a_probe_hanging_past_its_deadline_becomes_a_timeout_result() -> None:
    results = round_of([answers("a"), hangs("b")], timeout=TINY, grace=TINY)

    assert results[0].ok
    late = results[1]
    assert (late.target, late.kind, late.ok, late.code) == ("b", ProbeKind.HTTP, False, "timeout")
    assert "no result within" in late.reason


def test_a_probe_that_swallows_cancellation_does_not_hold_the_round() -> None:
    finished = asyncio.Event()

    async def defiant(_: float) -> ProbeResult:
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            await asyncio.sleep(0.2)  # refuses to stop at once (then ends, so the test can)
        finished.set()
        return ok("b")

    async def main() -> tuple[list[ProbeResult], bool]:
        results = await run_round([FakeProbe("b", defiant)], TINY, grace_seconds=TINY)
        return results, finished.is_set()

    results, finished_before_round_returned = asyncio.run(main())

    assert results[0].code == "timeout"
    assert not finished_before_round_returned


def test_a_probe_that_raises_becomes_an_error_result_without_its_message() -> None:
    results = round_of([raises("a", RuntimeError("password=hunter2 leaked")), answers("b")])

    failed = results[0]
    assert (failed.target, failed.kind, failed.ok, failed.code) == (
        "a",
        ProbeKind.POSTGRES,
        False,
        "error",
    )
    assert "RuntimeError" in failed.reason
    assert "hunter2" not in failed.reason
    assert results[1].ok


def test_a_probe_returning_something_else_becomes_an_error_result() -> None:
    async def wrong(_: float) -> object:
        return {"ok": True}

    (result,) = round_of([FakeProbe("a", wrong)])

    assert result.code == "error"
    assert "dict" in result.reason


def test_an_empty_round_has_no_results() -> None:
    assert round_of([]) == []


# --- the result value and the shared probe runner ----------------------------------------------


def test_a_result_cannot_contradict_its_code() -> None:
    with pytest.raises(ValueError, match="contradicts"):
        ProbeResult("a", ProbeKind.TCP, True, 1.0, ProbeCode.TIMEOUT, "x")
    with pytest.raises(ValueError, match="contradicts"):
        ProbeResult("a", ProbeKind.TCP, False, 1.0, ProbeCode.OK, "x")
    with pytest.raises(ValueError, match=">= 0"):
        ProbeResult("a", ProbeKind.TCP, True, -1.0, ProbeCode.OK, "x")


def test_one_line_masks_secrets_and_flattens() -> None:
    text = one_line("FATAL:  bad\n  password hunter2 for\tuser", ["hunter2", ""])

    assert text == f"FATAL: bad password {MASK} for user"


def test_refused_is_found_through_the_cause_chain() -> None:
    inner = ConnectionRefusedError(errno.ECONNREFUSED, "Connection refused")
    wrapper = RuntimeError("could not connect")
    wrapper.__cause__ = inner

    assert refused(wrapper)
    assert not refused(RuntimeError("other"))
    assert not refused(OSError(errno.EHOSTUNREACH, "No route to host"))


def _measure(check: Callable[[], Awaitable[Verdict]], timeout: float = 1.0) -> ProbeResult:
    async def main() -> ProbeResult:
        return await measured(
            "a", ProbeKind.TCP, timeout, check(), "TCP connect to x:1", ["s3cr3t"]
        )

    return asyncio.run(main())


def test_measured_turns_failures_into_codes_and_never_raises() -> None:
    async def refuses() -> Verdict:
        raise ConnectionRefusedError(errno.ECONNREFUSED, "Connection refused")

    async def breaks() -> Verdict:
        raise ValueError("token s3cr3t\nrejected")

    async def stalls() -> Verdict:
        await asyncio.sleep(3600)
        raise AssertionError("unreachable")

    async def passes() -> Verdict:
        return Verdict(ProbeCode.OK, "fine", role="primary", epoch=3)

    assert _measure(refuses).code == "connect_refused"
    broken = _measure(breaks)
    assert (broken.code, broken.reason) == (
        "error",
        f"TCP connect to x:1 failed: ValueError: token {MASK} rejected",
    )
    assert _measure(stalls, timeout=TINY).code == "timeout"
    good = _measure(passes)
    assert (good.ok, good.role, good.epoch) == (True, "primary", 3)
    assert type(good.code) is str  # a plain string for metrics labels and JSON, not the enum
    assert good.latency_ms >= 0


# --- which probes a region gets ----------------------------------------------------------------

REGION = load_topology(repo_root() / "config" / "topology.example.yaml").region("region-a")


def test_a_region_gets_health_tcp_postgres_and_canary_probes() -> None:
    policy = ProbePolicy(canary=CanarySpec(question="How do I reset?", expected_document="a.md"))
    dsn = Secret("postgresql://probe:pw@127.0.0.1:5432/dialog")

    probes = probes_for_region(REGION, policy, ProbeClients(), dsn)

    assert [type(p) for p in probes] == [HttpProbe, TcpProbe, PostgresProbe, CanaryProbe]
    assert {p.target for p in probes} == {"region-a"}
    http, tcp = probes[0], probes[1]
    assert isinstance(http, HttpProbe)
    assert isinstance(tcp, TcpProbe)
    assert http.url.endswith("/healthz")
    assert (tcp.host, tcp.port) == (REGION.runtime_url.host, REGION.runtime_url.port)


def test_without_dsn_or_canary_only_the_runtime_is_probed() -> None:
    probes = probes_for_region(REGION, ProbePolicy(), ProbeClients(), None)

    assert [p.kind for p in probes] == [ProbeKind.HTTP, ProbeKind.TCP]
