"""Load must not look like death: chat at 4x capacity beside the three controllers.

On a private harness (both runtimes, the three controllers probing every 1 s with a 0.5 s
timeout, threshold 3, majority quorum), with the runtime's default admission limits:

1. chat capacity: closed-loop clients (twice the chat lane's slots, so nothing is shed) for
   ``--capacity-seconds`` against the primary's runtime: answers per second;
2. then chat arrives open-loop at ``--factor`` (4) x that capacity for ``--seconds`` (60), from
   a separate process, while this process probes ``/healthz``, ``/readyz`` and the canary the
   way a controller does (0.5 s timeout), and the controllers go on probing and deciding.

Prints chat goodput (200 answers/s), shed rate (503 ``overloaded``), any other outcome, the
probes' latency during the load (target: p99 under half the probe timeout, 0.25 s), the
controllers' own probe results from the control store, their verdicts (health by quorum
replayed round by round over the stored observations, the leader's decisions from /metrics;
target: never unhealthy) and whether DNS still answers the primary. CPU of the runtime and of
the whole machine is printed too: on a shared 2-core machine the figures move with the load
other processes put on it.

    .venv/bin/python bench/overload.py [--seconds 60] [--factor 4] [--capacity-seconds 10]

The harness's ports start at ``BENCH_PORT_BASE`` (default 27600); ``SWITCHYARD_CHAT_*`` in the
environment reach the runtimes, so other admission limits can be measured the same way.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from multiprocessing.connection import Connection
from typing import Any

import aiohttp
from cpu import busy_cores_seconds, cpu_seconds
from prometheus_client.parser import text_string_to_metric_families
from stack import knot_answer, percentile, pid_of, wait

from switchyard.controller.view import loop_settings
from switchyard.db.control import observations_since
from switchyard.db.engine import make_engine, unit_of_work
from switchyard.devenv.dns import REGION_ADDRESSES
from switchyard.devenv.harness import Harness
from switchyard.devenv.layout import repo_root
from switchyard.devenv.process import http_ok
from switchyard.devenv.stacks import FAILOVER_SERVERS, private_harness, start_failover_stack
from switchyard.dialog.golden import load_golden
from switchyard.domain.health import READINESS, Health, Observation, assess, vantage_reports
from switchyard.topology import load_topology

PRIMARY = "region-a"
PROBE_TIMEOUT_SECONDS = 0.5  # start_failover_stack's probe timeout
TARGET_SECONDS = PROBE_TIMEOUT_SECONDS / 2
CHAT_TIMEOUT_SECONDS = 30.0
MAX_OUTSTANDING = 1024  # the open-loop client's own bound; arrivals beyond it are not sent


# -- chat load (in a child process, so its event loop never delays the probes' timing) ----------


@dataclass
class ChatTally:
    seconds: float = 0.0
    sent: int = 0
    ok: int = 0
    shed: int = 0
    not_sent: int = 0
    other: Counter[str] = field(default_factory=Counter)
    detail: dict[str, str] = field(default_factory=dict)  # one example per other outcome
    retry_after: Counter[str] = field(default_factory=Counter)
    ok_latency: list[float] = field(default_factory=list)


async def _chat(session: aiohttp.ClientSession, url: str, message: str, tally: ChatTally) -> None:
    started = time.perf_counter()
    try:
        async with session.post(f"{url}/v1/chat", json={"message": message}) as r:
            raw = await r.read()
            try:
                body = json.loads(raw)
            except ValueError:
                body = {"code": f"(not JSON: {raw[:40]!r})"}
            if r.status == 200:
                tally.ok += 1
                tally.ok_latency.append(time.perf_counter() - started)
            elif r.status == 503 and body.get("code") == "overloaded":
                tally.shed += 1
                tally.retry_after[r.headers.get("Retry-After", "none")] += 1
            else:
                outcome = f"{r.status} {body.get('code', '')}".strip()
                tally.other[outcome] += 1
                tally.detail.setdefault(outcome, str(body.get("detail", ""))[:160])
    except (TimeoutError, aiohttp.ClientError) as exc:
        tally.other[type(exc).__name__] += 1


async def _closed_loop(url: str, clients: int, seconds: float, questions: list[str]) -> ChatTally:
    tally = ChatTally()
    timeout = aiohttp.ClientTimeout(total=CHAT_TIMEOUT_SECONDS)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        started = time.perf_counter()

        async def client(i: int) -> None:
            n = i
            while time.perf_counter() - started < seconds:
                tally.sent += 1
                await _chat(session, url, questions[n % len(questions)], tally)
                n += clients

        await asyncio.gather(*(client(i) for i in range(clients)))
        tally.seconds = time.perf_counter() - started
    return tally


async def _open_loop(url: str, rate: float, seconds: float, questions: list[str]) -> ChatTally:
    tally = ChatTally()
    timeout = aiohttp.ClientTimeout(total=CHAT_TIMEOUT_SECONDS)
    connector = aiohttp.TCPConnector(limit=MAX_OUTSTANDING)
    async with aiohttp.ClientSession(timeout=timeout, connector=connector) as session:
        pending: set[asyncio.Task[None]] = set()
        started = time.perf_counter()
        i = 0
        while (due := started + i / rate) < started + seconds:
            await asyncio.sleep(max(0.0, due - time.perf_counter()))
            if len(pending) >= MAX_OUTSTANDING:
                tally.not_sent += 1
            else:
                tally.sent += 1
                task = asyncio.create_task(
                    _chat(session, url, questions[i % len(questions)], tally)
                )
                pending.add(task)
                task.add_done_callback(pending.discard)
            i += 1
        tally.seconds = time.perf_counter() - started
        await asyncio.gather(*pending)
    return tally


def _drive(conn: Connection, mode: str, url: str, amount: float, seconds: float) -> None:
    questions = [q.question for q in load_golden(GOLDEN).questions]
    if mode == "closed":
        tally = asyncio.run(_closed_loop(url, int(amount), seconds, questions))
    else:
        tally = asyncio.run(_open_loop(url, amount, seconds, questions))
    conn.send(tally)


def drive_chat(mode: str, url: str, amount: float, seconds: float) -> tuple[Any, Connection]:
    ours, theirs = multiprocessing.Pipe(duplex=False)
    process = multiprocessing.get_context("fork").Process(
        target=_drive, args=(theirs, mode, url, amount, seconds), daemon=True
    )
    process.start()
    return process, ours


GOLDEN = repo_root() / "corpus" / "golden" / "questions-v1.yaml"


# -- probing as a controller does, in this process -------------------------------------------


@dataclass
class ProbeTally:
    latency: list[float] = field(default_factory=list)
    failed: Counter[str] = field(default_factory=Counter)
    server_ms: list[float] = field(default_factory=list)  # the canary's own timings_ms.total


async def _probe_every(
    session: aiohttp.ClientSession,
    url: str,
    every: float,
    until: float,
    tally: ProbeTally,
    params: dict[str, str] | None = None,
) -> None:
    timeout = aiohttp.ClientTimeout(total=PROBE_TIMEOUT_SECONDS)
    while time.perf_counter() < until:
        started = time.perf_counter()
        try:
            async with session.get(url, params=params, timeout=timeout) as r:
                raw = await r.read()
                if r.status == 200:
                    tally.latency.append(time.perf_counter() - started)
                    total = json.loads(raw).get("timings_ms", {}).get("total")
                    if total is not None:
                        tally.server_ms.append(float(total))
                else:
                    tally.failed[str(r.status)] += 1
        except (TimeoutError, aiohttp.ClientError) as exc:
            tally.failed[type(exc).__name__] += 1
        await asyncio.sleep(max(0.0, every - (time.perf_counter() - started)))


async def probe_during(base: str, seconds: float, canary_q: str) -> dict[str, ProbeTally]:
    tallies = {"healthz": ProbeTally(), "readyz": ProbeTally(), "canary": ProbeTally()}
    until = time.perf_counter() + seconds
    async with aiohttp.ClientSession() as session:
        await asyncio.gather(
            _probe_every(session, f"{base}/healthz", 0.1, until, tallies["healthz"]),
            _probe_every(session, f"{base}/readyz", 0.25, until, tallies["readyz"]),
            _probe_every(
                session, f"{base}/v1/canary", 0.25, until, tallies["canary"], {"q": canary_q}
            ),
        )
    return tallies


# -- the controllers' view ----------------------------------------------------------------


def controller_decisions(h: Harness) -> Counter[str]:
    """``switchyard_decisions_total`` by code, summed over the three controllers."""
    import httpx

    total: Counter[str] = Counter()
    for c in h.controllers.values():
        text = httpx.get(f"http://127.0.0.1:{c.metrics_port}/metrics", timeout=5).text
        for family in text_string_to_metric_families(text):
            for s in family.samples:
                if s.name == "switchyard_decisions_total":
                    total[s.labels["code"]] += int(s.value)
    return total


def stored_observations(h: Harness, since: datetime, until: datetime) -> list[Observation]:
    engine = make_engine(h.control_db.url())
    try:
        with unit_of_work(engine) as session:
            rows = observations_since(session=session, since=since)
    finally:
        engine.dispose()
    return [o for o in rows if o.at <= until and o.region == PRIMARY]


def worst_verdict(h: Harness, observations: list[Observation]) -> tuple[Health, str]:
    """Health by quorum, replayed at every stored round: the worst seen and its reason."""
    rule = loop_settings(load_topology(h.api.topology_path)).rule
    order = [Health.HEALTHY, Health.UNKNOWN, Health.SUSPECT, Health.UNHEALTHY]
    worst, reason = Health.HEALTHY, "every round healthy"
    for at in sorted({o.at for o in observations}):
        health = assess(PRIMARY, vantage_reports(o for o in observations if o.at <= at), rule, at)
        if order.index(health.status) > order.index(worst):
            worst, reason = health.status, health.reason
    return worst, reason


def per_vantage(observations: list[Observation]) -> list[str]:
    lines = []
    for vantage in sorted({o.vantage for o in observations}):
        mine = [o for o in observations if o.vantage == vantage and o.kind != READINESS]
        rounds: dict[datetime, bool] = {}
        for o in mine:
            rounds[o.at] = rounds.get(o.at, True) and o.ok
        streak = longest = 0
        for at in sorted(rounds):
            streak = 0 if rounds[at] else streak + 1
            longest = max(longest, streak)
        failed = Counter(f"{o.kind}:{o.code}" for o in mine if not o.ok)
        lines.append(
            f"   {vantage:<8} {len(rounds)} rounds, {sum(not ok for ok in rounds.values())} failed"
            f", longest failing streak {longest}"
            + (f" ({', '.join(f'{k} x{n}' for k, n in failed.most_common())})" if failed else "")
        )
    return lines


# -- figures ------------------------------------------------------------------------------


def probe_line(name: str, t: ProbeTally) -> str:
    n = len(t.latency) + sum(t.failed.values())
    failed = f"{sum(t.failed.values())}/{n}" + (f" {dict(t.failed)}" if t.failed else "")
    ms = [v * 1000 for v in t.latency]
    inside = (
        f" (inside the runtime's canary: p50 {percentile(t.server_ms, 0.5):.1f} ms, "
        f"p99 {percentile(t.server_ms, 0.99):.1f} ms)"
        if t.server_ms
        else ""
    )
    return (
        f"   {name:<8} p50 {percentile(ms, 0.5):6.1f} ms  p99 {percentile(ms, 0.99):6.1f} ms"
        f"  max {max(ms, default=float('nan')):6.1f} ms  failed {failed}{inside}"
    )


def stored_probe_lines(observations: list[Observation]) -> tuple[list[str], dict[str, float]]:
    lines, p99 = [], {}
    for kind in sorted({o.kind for o in observations}):
        mine = [o for o in observations if o.kind == kind]
        ms = [o.latency_ms for o in mine if o.ok and o.latency_ms is not None]
        p99[kind] = percentile(ms, 0.99)
        lines.append(
            f"   {kind:<10} {len(mine)} probes, {sum(not o.ok for o in mine)} failed, "
            f"p50 {percentile(ms, 0.5):6.1f} ms, p99 {percentile(ms, 0.99):6.1f} ms, "
            f"max {max(ms, default=float('nan')):6.1f} ms"
        )
    return lines, p99


def print_runtime_errors(h: Harness) -> None:
    log = h.layout.log(h.runtimes[PRIMARY].name).read_text(errors="replace").splitlines()
    errors = [line[:2000] for line in log if '"error"' in line.lower() or "Traceback" in line]
    print("   the runtime's last errors:", *errors[-5:], sep="\n     ")


def chat_capacity(h: Harness, base: str, clients: int, seconds: float) -> float:
    """Answers/s of ``clients`` closed-loop clients (after a short warm-up), printed."""
    print(f"== chat capacity: {clients} closed-loop clients for {seconds:g} s")
    for span in (3.0, seconds):  # the first is the warm-up
        process, conn = drive_chat("closed", base, clients, span)
        tally: ChatTally = conn.recv()
        process.join()
    capacity = tally.ok / tally.seconds
    if not tally.ok:
        print_runtime_errors(h)
        raise SystemExit(f"bench: no chat answered: {dict(tally.other)} {tally.detail}")
    print(
        f"   {capacity:.1f} chats/s (p50 {percentile(tally.ok_latency, 0.5):.3f} s, "
        f"p99 {percentile(tally.ok_latency, 0.99):.3f} s; shed {tally.shed}, "
        f"other {dict(tally.other) or 0})"
    )
    return capacity


@dataclass
class Load:
    """What happened during the overload phase."""

    chat: ChatTally
    probes: dict[str, ProbeTally]
    observations: list[Observation]
    decisions: Counter[str]
    runtime_cores: float
    machine_cores: float


def overload(h: Harness, base: str, rate: float, seconds: float, question: str) -> Load:
    runtime_pid = pid_of(h, h.runtimes[PRIMARY].name)
    decisions_before = controller_decisions(h)
    since = datetime.now(UTC)
    cpu_before, busy_before = cpu_seconds(runtime_pid), busy_cores_seconds()
    wall = time.perf_counter()
    process, conn = drive_chat("open", base, rate, seconds)
    probes = asyncio.run(probe_during(base, seconds, question))
    chat: ChatTally = conn.recv()
    process.join()
    wall = time.perf_counter() - wall
    runtime_cores = (cpu_seconds(runtime_pid) - cpu_before) / wall
    machine_cores = (busy_cores_seconds() - busy_before) / wall
    until = datetime.now(UTC)
    time.sleep(2.5)  # the last rounds reach the store
    return Load(
        chat,
        probes,
        stored_observations(h, since, until),
        controller_decisions(h) - decisions_before,
        runtime_cores,
        machine_cores,
    )


def report(h: Harness, load: Load) -> dict[str, Any]:
    chat = load.chat
    goodput, shed_rate = chat.ok / chat.seconds, chat.shed / chat.seconds
    print(
        f"   chat: {chat.sent} sent; {chat.ok} answered 200, goodput {goodput:.1f}/s "
        f"(p50 {percentile(chat.ok_latency, 0.5):.3f} s, "
        f"p99 {percentile(chat.ok_latency, 0.99):.3f} s); "
        f"{chat.shed} shed 503 overloaded, {shed_rate:.1f}/s "
        f"({100 * chat.shed / max(1, chat.sent):.1f} %), Retry-After {dict(chat.retry_after)}; "
        f"other outcomes {dict(chat.other) or 0}; not sent (client bound) {chat.not_sent}"
    )
    if chat.other:
        print_runtime_errors(h)
    print(
        f"   CPU: runtime {load.runtime_cores:.2f} cores; whole machine "
        f"{load.machine_cores:.2f} of {os.cpu_count()} cores busy; load average after "
        f"{os.getloadavg()[0]:.1f}"
    )
    print(
        f"== probes from the bench during the load (timeout {PROBE_TIMEOUT_SECONDS} s; "
        f"target p99 < {TARGET_SECONDS} s)"
    )
    for name, t in load.probes.items():
        print(probe_line(name, t))
    print(f"== the controllers' own probes of {PRIMARY} during the load (control store)")
    stored_lines, stored_p99 = stored_probe_lines(load.observations)
    for line in stored_lines:
        print(line)
    verdict, reason = worst_verdict(h, load.observations)
    answer = knot_answer(h)
    print(f"== the controllers' verdicts on {PRIMARY} (target: never unhealthy)")
    for line in per_vantage(load.observations):
        print(line)
    print(f"   worst health by quorum, replayed at every round: {verdict.value} ({reason})")
    print(f"   leader decisions during the load: {dict(load.decisions)}")
    print(f"   Knot answers {answer} (primary {PRIMARY} is {REGION_ADDRESSES[PRIMARY]})")
    return {
        "seconds": round(chat.seconds, 1),
        "goodput_chats_per_second": round(goodput, 2),
        "shed_per_second": round(shed_rate, 2),
        "shed_fraction": round(chat.shed / max(1, chat.sent), 3),
        "other_outcomes": dict(chat.other),
        **{
            f"{k}_p99_seconds": round(percentile(t.latency, 0.99), 4)
            for k, t in load.probes.items()
        },
        "probe_failures": {k: sum(t.failed.values()) for k, t in load.probes.items()},
        "controller_probe_p99_ms": {k: round(v, 1) for k, v in stored_p99.items()},
        "target_p99_seconds": TARGET_SECONDS,
        "worst_verdict": verdict.value,
        "decisions": dict(load.decisions),
        "dns_unchanged": answer == REGION_ADDRESSES[PRIMARY],
        "runtime_cores": round(load.runtime_cores, 2),
        "machine_busy_cores": round(load.machine_cores, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--factor", type=float, default=4.0)
    parser.add_argument("--capacity-seconds", type=float, default=10.0)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    port_base = int(os.environ.get("BENCH_PORT_BASE", "27600"))
    with private_harness("bench-overload", FAILOVER_SERVERS, port_base) as h:
        print("== started a private harness; now both runtimes and three controllers")
        start_failover_stack(h)
        base = h.runtimes[PRIMARY].url
        wait(f"{PRIMARY} ready", lambda: http_ok(f"{base}/readyz"), 240)
        wait("Knot to answer the primary", lambda: knot_answer(h) == REGION_ADDRESSES[PRIMARY], 60)
        canary = load_topology(h.api.topology_path).probes.canary
        question = canary.question if canary is not None else "How many vacation days do I get?"
        # Twice the chat lane's slots: the lane is full, nothing is shed.
        slots = int(os.environ.get("SWITCHYARD_CHAT_MAX_CONCURRENCY", "2"))
        capacity = chat_capacity(h, base, 2 * slots, args.capacity_seconds)
        rate = args.factor * capacity
        print(
            f"== overload: {rate:.1f} chats/s offered ({args.factor:g}x capacity) "
            f"for {args.seconds:g} s beside the three controllers"
        )
        load = overload(h, base, rate, args.seconds, question)
        result = {
            "capacity_chats_per_second": round(capacity, 2),
            "offered_chats_per_second": round(rate, 2),
            **report(h, load),
        }
    if args.json:
        print(json.dumps(result))


if __name__ == "__main__":
    main()
