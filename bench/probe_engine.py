"""Benchmark: HTTP probes per second of our probe engine on one core, beside blackbox_exporter.

Prints, measured in one run against one local static HTTP server (a minimal asyncio server
answering ``200 ok`` with keep-alive, in its own process pinned to the other core; its CPU
use is printed so a saturated server cannot pass for a slow client):

1. the engine: ``run_round`` over ``--concurrency`` ``HttpProbe`` s sharing one keep-alive
   session, round after round, in a process pinned to one core: probes/s, probe latency
   p50/p99 (as the results report it), CPU used;
2. the same probes kept ``--concurrency`` in flight without rounds (the ceiling: no round
   waits for its slowest probe);
3. httpx.AsyncClient doing the same GETs at the same concurrency, for comparison;
4. Prometheus' blackbox_exporter (``http_2xx`` module) driven by ``--concurrency`` concurrent
   ``/probe`` requests from a pinned aiohttp client; successful probes/s and the cores the
   exporter used (``/proc/<pid>/stat``). The exporter is not pinned: it schedules itself.

Each phase runs ``--seconds`` after a short warm-up, in a fresh process. Figures only;
nothing is asserted.

    .venv/bin/python bench/probe_engine.py [--seconds 5] [--concurrency 100] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

BLACKBOX = "/usr/bin/prometheus-blackbox-exporter"
RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nok"
WARMUP_SECONDS = 1.0
PROBE_TIMEOUT_SECONDS = 2.0


# --- measuring ---------------------------------------------------------------------------------


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of process ``pid`` so far (its threads included)."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat.rsplit(")", 1)[1].split()  # after "pid (comm)": field 3 onwards
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def busy_cores_seconds() -> float:
    """CPU seconds all processes on this machine have spent busy (not idle or iowait)."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, round(pct / 100 * (len(ordered) - 1)))]


def pin(cpu: int | None) -> None:
    if cpu is not None:
        os.sched_setaffinity(0, {cpu})


# --- the static server (child process) ----------------------------------------------------------


class StaticHttp(asyncio.Protocol):
    """Answers every request head with the same 200 response; keeps connections open."""

    def __init__(self) -> None:
        self.buffer = b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        heads = self.buffer.count(b"\r\n\r\n")
        if heads and self.transport is not None:
            self.buffer = self.buffer[self.buffer.rfind(b"\r\n\r\n") + 4 :]
            self.transport.write(RESPONSE * heads)


def serve_static(cpu: int | None) -> None:
    pin(cpu)

    async def main() -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(StaticHttp, "127.0.0.1", 0, backlog=1024)
        print(server.sockets[0].getsockname()[1], flush=True)
        await server.serve_forever()

    asyncio.run(main())


# --- the load phases (child process, pinned) ----------------------------------------------------


async def for_window(
    seconds: float, watch: list[int], run: Callable[[float], Awaitable[list[float]]]
) -> dict[str, Any]:
    """Warm up, then run ``run(deadline)`` for ``seconds``; CPU of us and ``watch`` over it."""
    await run(time.perf_counter() + WARMUP_SECONDS)
    before = {pid: cpu_seconds(pid) for pid in [os.getpid(), *watch]}
    busy_before = busy_cores_seconds()
    start = time.perf_counter()
    latencies = await run(start + seconds)
    wall = time.perf_counter() - start
    busy = (busy_cores_seconds() - busy_before) / wall
    used = {pid: (cpu_seconds(pid) - t) / wall for pid, t in before.items()}
    # Everything else the machine ran meanwhile (other sessions' tests, the harness): figures
    # taken while this is high understate what the engine can do.
    others = max(0.0, busy - sum(used.values()))
    client = used.pop(os.getpid())
    return {
        "probes": len(latencies),
        "seconds": wall,
        "probes_per_second": len(latencies) / wall,
        "p50_ms": percentile(latencies, 50),
        "p99_ms": percentile(latencies, 99),
        "client_cores": client,
        "watched_cores": {str(pid): cores for pid, cores in used.items()},
        "other_cores": others,
    }


async def engine_rounds(url: str, concurrency: int, seconds: float, watch: list[int]) -> Any:
    from switchyard.adapters.probes import HttpProbe, ProbeClients
    from switchyard.controller.probing import run_round
    from switchyard.ports.probe import Probe

    failed = 0
    async with ProbeClients() as clients:
        probes: list[Probe] = [HttpProbe("bench", url, clients=clients) for _ in range(concurrency)]

        async def run(deadline: float) -> list[float]:
            nonlocal failed
            latencies: list[float] = []
            while time.perf_counter() < deadline:
                for r in await run_round(probes, PROBE_TIMEOUT_SECONDS):
                    latencies.append(r.latency_ms)
                    failed += not r.ok
            return latencies

        figures = await for_window(seconds, watch, run)
    return figures | {"failed": failed}


async def engine_steady(url: str, concurrency: int, seconds: float, watch: list[int]) -> Any:
    from switchyard.adapters.probes import HttpProbe, ProbeClients

    failed = 0
    async with ProbeClients() as clients:
        probe = HttpProbe("bench", url, clients=clients)

        async def run(deadline: float) -> list[float]:
            latencies: list[float] = []

            async def worker() -> None:
                nonlocal failed
                while time.perf_counter() < deadline:
                    r = await probe.probe(PROBE_TIMEOUT_SECONDS)
                    latencies.append(r.latency_ms)
                    failed += not r.ok

            await asyncio.gather(*(worker() for _ in range(concurrency)))
            return latencies

        figures = await for_window(seconds, watch, run)
    return figures | {"failed": failed}


async def httpx_steady(url: str, concurrency: int, seconds: float, watch: list[int]) -> Any:
    import httpx

    failed = 0
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(limits=limits, timeout=PROBE_TIMEOUT_SECONDS) as client:

        async def run(deadline: float) -> list[float]:
            latencies: list[float] = []

            async def worker() -> None:
                nonlocal failed
                while time.perf_counter() < deadline:
                    t = time.perf_counter()
                    try:
                        ok = (await client.get(url)).status_code == 200
                    except httpx.HTTPError:
                        ok = False
                    latencies.append((time.perf_counter() - t) * 1000)
                    failed += not ok

            await asyncio.gather(*(worker() for _ in range(concurrency)))
            return latencies

        figures = await for_window(seconds, watch, run)
    return figures | {"failed": failed}


async def blackbox_driven(url: str, concurrency: int, seconds: float, watch: list[int]) -> Any:
    """``url`` here is the exporter's /probe URL; a probe counts when it reports success."""
    import aiohttp

    failed = 0
    connector = aiohttp.TCPConnector(limit=concurrency * 2)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def run(deadline: float) -> list[float]:
            latencies: list[float] = []

            async def worker() -> None:
                nonlocal failed
                while time.perf_counter() < deadline:
                    t = time.perf_counter()
                    try:
                        async with session.get(url) as response:
                            body = await response.read()
                    except aiohttp.ClientError:
                        failed += 1
                        continue
                    if response.status == 200 and b"\nprobe_success 1" in body:
                        latencies.append((time.perf_counter() - t) * 1000)
                    else:
                        failed += 1

            await asyncio.gather(*(worker() for _ in range(concurrency)))
            return latencies

        figures = await for_window(seconds, watch, run)
    return figures | {"failed": failed}


PHASES = {
    "rounds": engine_rounds,
    "steady": engine_steady,
    "httpx": httpx_steady,
    "blackbox": blackbox_driven,
}


def load(
    phase: str, url: str, concurrency: int, seconds: float, cpu: int | None, watch: str
) -> None:
    pin(cpu)
    pids = [int(p) for p in watch.split(",") if p]
    figures = asyncio.run(PHASES[phase](url, concurrency, seconds, pids))
    print(json.dumps(figures), flush=True)


# --- the parent: processes, phases, report -----------------------------------------------------


def child(*argv: str) -> list[str]:
    return [sys.executable, __file__, *argv]


def start_server(cpu: int | None) -> tuple[subprocess.Popen[str], int]:
    server = subprocess.Popen(
        child("--role", "server", *(["--cpu", str(cpu)] if cpu is not None else [])),
        stdout=subprocess.PIPE,
        text=True,
    )
    assert server.stdout is not None
    return server, int(server.stdout.readline())


def start_blackbox(folder: Path) -> tuple[subprocess.Popen[bytes], int]:
    import socket

    config = folder / "blackbox.yml"
    config.write_text("modules:\n  http_2xx:\n    prober: http\n    timeout: 2s\n")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    exporter = subprocess.Popen(
        [
            BLACKBOX,
            f"--config.file={config}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--log.level=error",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 15
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return exporter, port
        except OSError:
            if time.monotonic() > deadline or exporter.poll() is not None:
                raise SystemExit("blackbox_exporter did not start") from None
            time.sleep(0.05)


def run_phase(
    phase: str, url: str, args: argparse.Namespace, cpu: int | None, watch: list[int]
) -> dict[str, Any]:
    argv = ["--role", "load", "--phase", phase, "--url", url]
    argv += ["--concurrency", str(args.concurrency), "--seconds", str(args.seconds)]
    argv += ["--watch", ",".join(str(p) for p in watch)]
    if cpu is not None:
        argv += ["--cpu", str(cpu)]
    out = subprocess.run(child(*argv), capture_output=True, text=True, check=True).stdout
    figures: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    return figures


def report(figures: dict[str, Any], args: argparse.Namespace, cpus: str) -> None:
    print(
        f"HTTP probe engine, {args.concurrency} in flight, {args.seconds:g} s per phase, "
        f"{os.cpu_count()} CPUs ({cpus})"
    )
    print(
        f"\n{'phase':<34} {'probes/s':>9} {'p50 ms':>7} {'p99 ms':>7} {'client cores':>12}"
        f" {'server cores':>12} {'others':>6} {'failed':>6}"
    )
    labels = {
        "rounds": "switchyard run_round (aiohttp)",
        "steady": "switchyard probes, no rounds",
        "httpx": "httpx.AsyncClient, same GETs",
        "blackbox": "blackbox_exporter via /probe",
    }
    for phase, label in labels.items():
        f = figures.get(phase)
        if f is None:
            continue
        print(
            f"{label:<34} {f['probes_per_second']:>9.0f} {f['p50_ms']:>7.1f} {f['p99_ms']:>7.1f}"
            f" {f['client_cores']:>12.2f} {f['server_cores']:>12.2f} {f['other_cores']:>6.2f}"
            f" {f['failed']:>6}"
        )
    ours = figures["rounds"]
    busiest = max(f["other_cores"] for f in figures.values())
    if busiest > 0.25:
        print(
            f"\nwarning: other processes used up to {busiest:.2f} cores during a phase;"
            " these figures understate the engine (rerun on a quiet machine)"
        )
    if any(f["server_cores"] > 0.9 for f in figures.values()):
        print("\nwarning: the static server used > 0.9 of its core; it may be the bottleneck")
    bb = figures.get("blackbox")
    if bb is not None:
        print(
            f"\nblackbox_exporter itself used {bb['exporter_cores']:.2f} cores for "
            f"{bb['probes_per_second']:.0f} probes/s "
            f"({bb['probes_per_second'] / max(bb['exporter_cores'], 1e-9):.0f} per core-second);"
            f" switchyard {ours['probes_per_second'] / max(ours['client_cores'], 1e-9):.0f}"
            " per core-second"
        )
        ratio = ours["probes_per_second"] / max(bb["probes_per_second"], 1e-9)
        print(f"ratio switchyard run_round / blackbox_exporter probes/s: {ratio:.2f}x")
    print(
        "latency is each probe's own measure (request to parsed response, under full load);"
        " blackbox's is the /probe round trip.\n'others' is the CPU the rest of the machine"
        " used during the phase (other processes compete for the same cores)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--concurrency", type=int, default=100)
    parser.add_argument("--no-httpx", action="store_true", help="skip the httpx comparison")
    parser.add_argument("--no-blackbox", action="store_true", help="skip blackbox_exporter")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.add_argument("--role", choices=["main", "server", "load"], default="main")
    parser.add_argument("--phase", choices=sorted(PHASES), help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--cpu", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--watch", default="", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.role == "server":
        serve_static(args.cpu)
        return
    if args.role == "load":
        load(args.phase, args.url, args.concurrency, args.seconds, args.cpu, args.watch)
        return

    cpus = sorted(os.sched_getaffinity(0))
    engine_cpu, server_cpu = (cpus[0], cpus[1]) if len(cpus) >= 2 else (None, None)
    pinning = (
        f"engine on CPU {engine_cpu}, server on CPU {server_cpu}"
        if engine_cpu is not None
        else "one CPU: nothing pinned"
    )
    use_blackbox = not args.no_blackbox and Path(BLACKBOX).exists()
    folder = Path(tempfile.mkdtemp(prefix="switchyard-bench-probes-"))
    processes: list[subprocess.Popen[Any]] = []
    figures: dict[str, Any] = {}
    try:
        server, port = start_server(server_cpu)
        processes.append(server)
        target = f"http://127.0.0.1:{port}/"
        phases = ["rounds", "steady"] + ([] if args.no_httpx else ["httpx"])
        for phase in phases:
            f = run_phase(phase, target, args, engine_cpu, [server.pid])
            f["server_cores"] = f.pop("watched_cores")[str(server.pid)]
            figures[phase] = f
        if use_blackbox:
            exporter, bb_port = start_blackbox(folder)
            processes.append(exporter)
            probe_url = f"http://127.0.0.1:{bb_port}/probe?target={target}&module=http_2xx"
            f = run_phase("blackbox", probe_url, args, engine_cpu, [server.pid, exporter.pid])
            watched = f.pop("watched_cores")
            f["server_cores"] = watched[str(server.pid)]
            f["exporter_cores"] = watched[str(exporter.pid)]
            figures["blackbox"] = f
    finally:
        for process in reversed(processes):
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
        shutil.rmtree(folder, ignore_errors=True)

    if args.json:
        print(json.dumps({"cpus": os.cpu_count(), "pinning": pinning, "phases": figures}))
    else:
        report(figures, args, pinning)


if __name__ == "__main__":
    main()
