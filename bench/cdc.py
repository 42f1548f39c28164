"""Benchmark: our CDC pipeline beside ``pg_recvlogical -P wal2json | kcat -P``, in one run.

Each run starts a private harness (two PostgreSQL 15 clusters and a fresh broker: noida-db's CPU
grows with the data it keeps, ≈1 core idle at 170 MB, so topics are deleted between phases),
makes a database of its own on each cluster, and replicates ``dialog_turns`` from region A to
region B.
Our source (``ChangeSource``) and sink (``ChangeSink``) run in processes of their own (spawned:
no shared GIL); so do the writer and the consumers; the peer is its two binaries. Ours and the
peer never run at the same time.

1. Steady: a writer commits single-row transactions at ``--rate`` per second for ``--seconds``.
   Ours: commit → applied in the standby (``Applied.applied_ms - commit_ms``, per transaction),
   and commit → received from our topic by a plain consumer (which half the time goes to).
   Peer: commit (wal2json's commit timestamp) → received from its topic by the same consumer.
   Target: ours p99 < 100 ms.
2. Burst into the broker: ``--rows`` rows committed in transactions of 1000 while nothing reads
   the slots; then our source is started and timed until its stored position (written once the
   broker acknowledged) covers every transaction. The peer reads the same WAL through its own
   slot (created before the inserts), wal2json ``format-version=2`` (one line per row) piped
   into ``kcat -X linger.ms=0``, timed until its topic's high watermark counts every row. Two
   runs of each, in the order ours, peer, peer, ours (a second source region gives ours a
   second slot), each on a broker holding only its own rows. Target: ours ≥ 0.7x the peer.
3. Burst applied in the standby: our sink started over the rows our first run published, until
   its stored cursor reaches the source's last transaction. Target ≥ 20k rows/s. If nothing is
   applied for ``STALL_SECONDS`` the figure is marked stalled (noida-db answers a fetch with
   everything up to the end of the partition, so a backlog over librdkafka's 100 MB response
   limit is never read; real Kafka honours ``fetch.max.bytes``).

Figures only; nothing is asserted. ``--profile DIR`` runs our source and sink under cProfile
in each phase and prints where their time went.

    .venv/bin/python bench/cdc.py [--rows 200000] [--seconds 20] [--rate 1000] [--json]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import logging
import math
import multiprocessing as mp
import os
import pstats
import queue
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, replace
from datetime import datetime
from multiprocessing.context import SpawnContext
from pathlib import Path
from typing import Any

import psycopg
from cpu import busy_cores_seconds, cpu_seconds

from switchyard.devenv.cdc_pair import CdcWiring, drop_slot
from switchyard.devenv.cdc_pair import sql as run_sql
from switchyard.devenv.harness import Harness
from switchyard.devenv.ports import free_port_base
from switchyard.devenv.stacks import private_harness

SERVERS = ("pg-region-a", "pg-region-b", "kafka")
TX_ROWS = 1000
DATABASE = "bench_cdc"
POLL_SECONDS = 0.01
STALL_SECONDS = 20.0
TURN_SQL = (
    "INSERT INTO dialog_turns (session_id, seq, role, text, kind, region, epoch)"
    " SELECT %s, g, 'user', 'turn ' || g || ': ' || md5(g::text), 'message', %s, 1"
    " FROM generate_series(%s::int, %s::int) g"
)
STEADY_SQL = (
    "INSERT INTO dialog_turns (session_id, seq, role, text, kind, region, epoch)"
    " VALUES (%s, %s, 'user', 'steady turn', 'message', %s, 1)"
)
# kcat 1.7.1 (Debian) reads stdin with fread() in 1 KiB blocks: the last < 1 KiB of input
# waits in kcat until more arrives (or EOF). A wal2json row is ~550 bytes, so up to two rows.
KCAT_HELD_ROWS = 2
PEER_WARMUP_ROWS = 100
PEER_OPTIONS = ("format-version=2", "include-transaction=0", "include-timestamp=1")


Profiles = Callable[[str], str | None]  # a phase's name -> where its profile goes, if at all


# --- measuring ---------------------------------------------------------------------------------


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, round(pct / 100 * (len(ordered) - 1)))]


def wait_until(
    check: Callable[[], bool], timeout: float, what: str, watch: Sequence[Any] = ()
) -> None:
    """Poll ``check``; give up after ``timeout`` or as soon as a watched child (``Child`` or
    ``Popen``) has exited."""
    deadline = time.monotonic() + timeout
    while not check():
        for child in watch:
            if isinstance(child, subprocess.Popen) and child.poll() is not None:
                raise SystemExit(f"bench: {child.args!r:.40} exited while waiting for {what}")
            if isinstance(child, Child) and child.process.exitcode is not None:
                raise SystemExit(f"bench: {child.process.name} exited while waiting for {what}")
        if time.monotonic() > deadline:
            raise SystemExit(f"bench: timed out after {timeout:g} s waiting for {what}")
        time.sleep(POLL_SECONDS)


@dataclass
class Burst:
    rows: int
    seconds: float
    first_seconds: float | None  # until the first transaction (ours) or row (peer) arrived
    client_cores: float
    broker_cores: float
    busy_cores: float
    stalled: bool = False  # gave up: nothing moved for STALL_SECONDS


class Timed:
    """Wall time, first-progress time, the clients' CPU and the machine's busy cores of a phase."""

    def __init__(self, pids: list[int], broker: int) -> None:
        self.pids = list(pids)
        self.cpu = sum(cpu_seconds(p) for p in pids)
        self.broker, self.broker_cpu = broker, cpu_seconds(broker)
        self.busy = busy_cores_seconds()
        self.start = time.monotonic()
        self.first: float | None = None

    def watch(self, pids: list[int]) -> None:
        """Processes started after the phase began: all their CPU counts."""
        self.pids += pids

    def progress(self, moved: bool) -> None:
        if moved and self.first is None:
            self.first = time.monotonic() - self.start

    def done(self, rows: int) -> Burst:
        seconds = time.monotonic() - self.start
        cpu = sum(cpu_seconds(p) for p in self.pids) - self.cpu
        busy = busy_cores_seconds() - self.busy
        broker = cpu_seconds(self.broker) - self.broker_cpu
        return Burst(rows, seconds, self.first, cpu / seconds, broker / seconds, busy / seconds)


# --- wiring: switchyard.devenv.cdc_pair, as the integration tests use it ----------------------


@dataclass(frozen=True)
class Wiring(CdcWiring):
    session_id: str
    broker_pid: int  # its CPU is reported: noida-db's grows with the data it keeps


def prepare(h: Harness) -> Wiring:
    """Fresh databases (``CdcWiring.fresh``) plus the session the turns belong to (so the first
    snapshot carries it to the standby); new region names, so a new slot and new topics."""
    base = CdcWiring.fresh(h, "bench", DATABASE)
    w = Wiring(
        **asdict(base),
        session_id=str(uuid.uuid4()),
        broker_pid=int(Path(h.layout.pidfile(h.kafka.name)).read_text().split()[0]),
    )
    sql(
        w.source_conninfo,
        "INSERT INTO dialog_sessions (id, region, epoch) VALUES (%s, %s, 1)",
        w.session_id,
        w.source_region,
    )
    return w


def another_source(w: Wiring) -> Wiring:
    """A second primary region in the same source database: its own slot and topic over the
    same WAL (its sink is never run)."""
    suffix = uuid.uuid4().hex[:8]
    sql(w.source_conninfo, "INSERT INTO region_state VALUES (%s, 'primary', 1)", f"src-{suffix}")
    return replace(w, source_region=f"src-{suffix}", topic=f"bench.cdc.{suffix}")


def retire(w: Wiring, *topics: str) -> None:
    """Our slot dropped (so ``prepare`` may drop the database) and ``topics`` deleted."""
    from switchyard.replication.catalog import slot_name

    drop_slot(w.source_conninfo, slot_name(w.source_region))
    delete_topics(w, *topics)


def delete_topics(w: Wiring, *topics: str) -> None:
    """noida-db spends CPU on every byte it keeps (≈1 core idle at 170 MB): a phase must not
    pay for the data of the one before."""
    from switchyard.adapters.events_kafka import KafkaTopics

    kafka = KafkaTopics(w.bootstrap)
    for topic in topics:
        kafka.delete(topic)


def sql(conninfo: str, query: str, *params: object) -> list[tuple[Any, ...]]:
    return run_sql(conninfo, query, params)


def build_source(w: Wiring) -> Any:
    return w.source("bench-cdc-source")


def build_sink(w: Wiring, on_applied: Callable[[Any], None]) -> Any:
    return w.sink("bench-cdc-sink", on_applied=on_applied)


# --- child processes (spawned: each imports this module afresh) --------------------------------


def cheap(stop: Any) -> Callable[[], bool]:
    """A stop check as cheap as the services' own: the source asks it once per message, and a
    multiprocessing Event takes a lock each time (≈6% of the source's time)."""
    flag = threading.Event()

    def relay() -> None:
        stop.wait()
        flag.set()

    threading.Thread(target=relay, daemon=True).start()
    return flag.is_set


def profiled(run: Callable[[], None], profile: str | None) -> None:
    if profile is None:
        run()
        return
    import cProfile

    profiler = cProfile.Profile()
    try:
        profiler.runcall(run)
    finally:
        profiler.dump_stats(profile)


def quiet_client_warnings() -> None:
    """librdkafka warns at every producer start that a setting we rely on is experimental."""
    logging.getLogger("switchyard.adapters.events_kafka").setLevel(logging.ERROR)


def source_child(w: Wiring, profile: str | None, out: Any, ready: Any, go: Any, stop: Any) -> None:
    quiet_client_warnings()
    source = build_source(w)
    ready.set()
    go.wait()
    profiled(lambda: source.run(cheap(stop)), profile)


def sink_child(w: Wiring, profile: str | None, out: Any, ready: Any, go: Any, stop: Any) -> None:
    """Sends ``(rows, commit_ms of each transaction, applied_ms)`` per committed batch."""

    def applied(a: Any) -> None:
        out.put((a.rows, a.commit_ms, a.applied_ms))

    quiet_client_warnings()
    sink = build_sink(w, applied)
    ready.set()
    go.wait()
    profiled(lambda: sink.run(cheap(stop)), profile)


def writer_child(
    w: Wiring, first_seq: int, rate: float, seconds: float, out: Any, ready: Any, go: Any, _: Any
) -> None:
    """Single-row transactions paced at ``rate`` per second (a late one is not skipped); sends
    ``(start_ms, transactions, seconds)`` at the end."""
    with psycopg.connect(w.source_conninfo, autocommit=True) as conn:
        ready.set()
        go.wait()
        total = round(rate * seconds)
        start_ms = int(time.time() * 1000)
        t0 = time.perf_counter()
        for i in range(total):
            delay = t0 + i / rate - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            conn.execute(STEADY_SQL, (w.session_id, first_seq + i, w.source_region), prepare=True)
        out.put((start_ms, total, time.perf_counter() - t0))


def wal2json_row(value: bytes) -> tuple[int, float] | None:
    """(seq, commit time in s) of a wal2json format-version 2 row."""
    import orjson

    row = orjson.loads(value)
    seq = next(c["value"] for c in row["columns"] if c["name"] == "seq")
    return seq, datetime.fromisoformat(row["timestamp"]).timestamp()


def switchyard_row(value: bytes) -> tuple[int, float] | None:
    """(seq, commit time in s) of our envelope's dialog_turns row (None: another table)."""
    import orjson

    record = orjson.loads(value)
    if record["source"]["table"] != "dialog_turns" or record.get("after") is None:
        return None
    return record["after"]["seq"], record["source"]["ts_ms"] / 1000


def consumer_child(
    bootstrap: str, topic: str, parse: str, out: Any, ready: Any, _: Any, stop: Any
) -> None:
    """Reads ``topic`` from its end and sends ``[(seq, receive - commit ms), ...]`` per fetch;
    ``parse`` names the function that reads a row change (control records are skipped)."""
    from confluent_kafka import OFFSET_END, Consumer, TopicPartition

    row_of = {"wal2json": wal2json_row, "switchyard": switchyard_row}[parse]
    consumer = Consumer(
        {  # what KafkaSubscriber sets, without a group to join
            "bootstrap.servers": bootstrap,
            "group.id": f"bench-latency-{uuid.uuid4().hex[:6]}",
            "enable.auto.commit": False,
            "isolation.level": "read_committed",
            "allow.auto.create.topics": False,
        }
    )
    consumer.assign([TopicPartition(topic, 0, OFFSET_END)])
    try:
        consumer.consume(1, 0.5)  # the end offset resolved before anything is written
        ready.set()
        while not stop.is_set():
            first = consumer.poll(0.05)  # returns with the first record, unlike consume()
            if first is None:
                continue
            messages = [first, *consumer.consume(1000, 0)]
            now = time.time()
            seen = []
            for msg in messages:
                value = msg.value()
                if msg.error() is None and not msg.headers() and value is not None:
                    row = row_of(value)
                    if row is not None:
                        seen.append((row[0], (now - row[1]) * 1000))
            if seen:
                out.put(seen)
    finally:
        consumer.close()


class Child:
    """A spawned process that signals ``ready`` once imported and connected, then waits for
    ``go``; ``halt`` sets ``stop`` and waits for it to return. What it sends through ``out`` is
    read with ``take`` (and while it stops, so a child never blocks at exit on a full pipe)."""

    def __init__(self, ctx: SpawnContext, name: str, target: Any, *args: Any) -> None:
        self.out: Any = ctx.Queue()
        self.taken: list[Any] = []
        self.ready, self.go, self.stop = ctx.Event(), ctx.Event(), ctx.Event()
        self.process = ctx.Process(
            target=target,
            name=name,
            args=(*args, self.out, self.ready, self.go, self.stop),
            daemon=True,
        )

    @property
    def pid(self) -> int:
        assert self.process.pid is not None
        return self.process.pid

    def start(self) -> Child:
        self.process.start()
        wait_until(
            lambda: self.ready.is_set() or not self.process.is_alive(), 60, self.process.name
        )
        if not self.ready.is_set():
            raise SystemExit(f"bench: {self.process.name} exited at start")
        return self

    def take(self) -> list[Any]:
        """What the child sent since the last ``take``."""
        items = []
        with contextlib.suppress(queue.Empty):
            while True:
                items.append(self.out.get_nowait())
        self.taken += items
        return items

    def halt(self, timeout: float = 30) -> None:
        self.stop.set()
        self.go.set()
        deadline = time.monotonic() + timeout
        while self.process.is_alive() and time.monotonic() < deadline:
            self.take()
            self.process.join(0.05)
        if self.process.is_alive():
            self.process.terminate()
            self.process.join(5)
        self.take()


@contextlib.contextmanager
def running(ctx: SpawnContext, name: str, target: Any, *args: Any) -> Iterator[Child]:
    child = Child(ctx, name, target, *args).start()
    try:
        yield child
    finally:
        child.halt()


# --- the peer: pg_recvlogical | kcat ------------------------------------------------------------


def create_peer_slot(w: Wiring, slot: str, topic: str) -> None:
    from switchyard.adapters.events_kafka import KafkaTopics

    sql(w.source_conninfo, "SELECT pg_create_logical_replication_slot(%s, 'wal2json')", slot)
    KafkaTopics(w.bootstrap).ensure(topic)


@contextlib.contextmanager
def peer_pipe(w: Wiring, slot: str, topic: str) -> Iterator[list[subprocess.Popen[bytes]]]:
    """``pg_recvlogical ... -f - | kcat -P`` (the password through the environment, not argv)."""
    params = psycopg.conninfo.conninfo_to_dict(w.source_conninfo)
    env = {**os.environ, "PGPASSWORD": str(params.pop("password", ""))}
    recv_argv = ["pg_recvlogical", "-d", psycopg.conninfo.make_conninfo("", **params)]
    recv_argv += ["--slot", slot, "--start", "-f", "-", "-o", "add-tables=public.dialog_turns"]
    for option in PEER_OPTIONS:
        recv_argv += ["-o", option]
    # Its stderr is shown only if the phase fails: a stop by SIGINT prints a harmless error.
    with tempfile.TemporaryFile() as errors:
        recv = subprocess.Popen(recv_argv, stdout=subprocess.PIPE, stderr=errors, env=env)
        assert recv.stdout is not None
        kcat = subprocess.Popen(
            ["kcat", "-P", "-b", w.bootstrap, "-t", topic, "-X", "linger.ms=0"], stdin=recv.stdout
        )
        recv.stdout.close()  # kcat holds the read end; it sees EOF once pg_recvlogical exits
        failed = True
        try:
            yield [recv, kcat]
            failed = False
        finally:
            recv.send_signal(signal.SIGINT)  # pg_recvlogical's clean stop
            for process in (recv, kcat):
                try:
                    process.wait(10)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
            if failed:
                errors.seek(0)
                sys.stderr.write(errors.read().decode(errors="replace"))
            drop_slot(w.source_conninfo, slot)


@contextlib.contextmanager
def high_watermark(bootstrap: str) -> Iterator[Callable[[str], int]]:
    """A function that asks the broker for a topic's high watermark (partition 0)."""
    from confluent_kafka import Consumer, TopicPartition

    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "bench-cdc-watermarks"})
    try:
        yield lambda topic: int(
            consumer.get_watermark_offsets(TopicPartition(topic, 0), timeout=5, cached=False)[1]
        )
    finally:
        consumer.close()


# --- the phases ---------------------------------------------------------------------------------


def source_tx_seq(conn: psycopg.Connection[Any], w: Wiring) -> int:
    """Our source's stored transaction number: written once the broker acknowledged."""
    from switchyard.replication.catalog import slot_name

    row = conn.execute(
        "SELECT tx_seq FROM cdc_source_positions WHERE slot = %s", (slot_name(w.source_region),)
    ).fetchone()
    return int(row[0]) if row else -1


def applied_tx_seq(conn: psycopg.Connection[Any], w: Wiring) -> int:
    row = conn.execute(
        "SELECT tx_seq FROM cdc_applied WHERE source_region = %s", (w.source_region,)
    ).fetchone()
    return int(row[0]) if row and row[0] is not None else -1


def first_run(ctx: SpawnContext, w: Wiring) -> None:
    """Our slot created and its initial snapshot (of the session alone) published, so the
    burst below travels as streamed changes, not as a snapshot."""
    with running(ctx, "cdc-source", source_child, w, None) as source:
        source.go.set()
        wait_until(
            lambda: (
                sql(w.source_conninfo, "SELECT 1 FROM cdc_source_positions WHERE snapshot = '[]'")
                != []
            ),
            60,
            "the initial snapshot",
            [source],
        )


def burst_insert(w: Wiring, first_seq: int, rows: int) -> float:
    started = time.monotonic()
    last_seq = first_seq + rows - 1
    with psycopg.connect(w.source_conninfo, autocommit=True) as conn:
        for first in range(first_seq, last_seq + 1, TX_ROWS):
            last = min(last_seq, first + TX_ROWS - 1)
            conn.execute(TURN_SQL, (w.session_id, w.source_region, first, last))
    return time.monotonic() - started


def burst_ours(ctx: SpawnContext, w: Wiring, rows: int, profile: str | None) -> Burst:
    with (
        psycopg.connect(w.source_conninfo, autocommit=True) as conn,
        running(ctx, "cdc-source", source_child, w, profile) as source,
    ):
        before = source_tx_seq(conn, w)
        target = before + math.ceil(rows / TX_ROWS)
        timed = Timed([source.pid], w.broker_pid)
        source.go.set()

        def caught_up() -> bool:
            seq = source_tx_seq(conn, w)
            timed.progress(seq > before)
            return seq >= target

        wait_until(caught_up, 600, "our source to publish the burst", [source])
        return timed.done(rows)


def bursts(ctx: SpawnContext, h: Harness, rows: int, profile: Profiles) -> dict[str, Any]:
    """Two runs each of ours and the peer over the same WAL, in the order ours, peer, peer,
    ours (single runs vary up to 2x on a 2-core machine, and it drifts), each on a broker
    holding only its own rows; our sink between the first two, over our first run's topic."""
    w = prepare(h)
    again = another_source(w)
    for source in (w, again):
        first_run(ctx, source)
    peers = [
        (f"bench_peer_burst_{i}_{uuid.uuid4().hex[:6]}", f"{w.topic}.peer-{i}") for i in (1, 2)
    ]
    for slot, topic in peers:
        create_peer_slot(w, slot, topic)
    print(f"== {rows} rows committed in transactions of {TX_ROWS}, nothing reading")
    insert_seconds = burst_insert(w, 1, rows)
    print("== burst: our source → broker (1 of 2)")
    ours = [burst_ours(ctx, w, rows, profile("burst-source"))]
    with psycopg.connect(w.source_conninfo, autocommit=True) as conn:
        last_tx = source_tx_seq(conn, w)
    print("== burst: our sink, topic → standby")
    sink = burst_sink(ctx, w, last_tx, profile("burst-sink"))
    delete_topics(w, w.topic)
    peer = []
    for i, (slot, topic) in enumerate(peers, 1):
        print(f"== burst: pg_recvlogical | kcat → broker, same WAL ({i} of 2)")
        peer.append(burst_peer(w, slot, topic, rows))
        delete_topics(w, topic)
    print("== burst: our source → broker (2 of 2)")
    ours.append(burst_ours(ctx, again, rows, None))
    return {
        "insert_seconds": insert_seconds,
        "ours": [vars(b) for b in ours],
        "peer": [vars(b) for b in peer],
        "sink": vars(sink),
    }


def burst_peer(w: Wiring, slot: str, topic: str, rows: int) -> Burst:
    timed = Timed([], w.broker_pid)  # the binaries' start counts too
    with high_watermark(w.bootstrap) as watermark, peer_pipe(w, slot, topic) as pipe:
        timed.watch([p.pid for p in pipe])

        def caught_up() -> bool:
            high = watermark(topic)
            timed.progress(high > 0)
            return high >= rows - KCAT_HELD_ROWS

        wait_until(caught_up, 600, "the peer to publish the burst", pipe)
        return timed.done(rows)


def burst_sink(ctx: SpawnContext, w: Wiring, target: int, profile: str | None) -> Burst:
    """Until the standby's cursor reaches transaction ``target``, or nothing was applied for
    ``STALL_SECONDS`` (then the figure is of what was applied, marked stalled)."""
    with (
        psycopg.connect(w.target_conninfo, autocommit=True) as standby,
        running(ctx, "cdc-sink", sink_child, w, profile) as sink,
    ):
        timed = Timed([sink.pid], w.broker_pid)
        sink.go.set()
        moved = time.monotonic()
        stalled = False

        def caught_up() -> bool:
            nonlocal moved, stalled
            if sink.take():
                timed.progress(True)
                moved = time.monotonic()
            stalled = time.monotonic() - moved > STALL_SECONDS
            return stalled or applied_tx_seq(standby, w) >= target

        wait_until(caught_up, 600, "our sink to apply the burst", [sink])
        burst = timed.done(0)
    burst.rows = sum(rows for rows, _, _ in sink.taken)
    burst.stalled = stalled
    return burst


def steady_ours(
    ctx: SpawnContext, w: Wiring, seq: int, rate: float, seconds: float, profile: Profiles
) -> tuple[list[float], list[float], float]:
    """Commit → applied latencies (ms) of the writer's transactions, commit → received from
    our topic by a plain consumer (where the time goes: source or sink), and the rate."""
    applied: list[float] = []
    in_topic: list[float] = []
    first = seq + 1
    with (
        running(ctx, "cdc-source", source_child, w, profile("steady-source")) as source,
        running(ctx, "cdc-sink", sink_child, w, profile("steady-sink")) as sink,
        running(ctx, "consumer", consumer_child, w.bootstrap, w.topic, "switchyard") as reader,
    ):
        source.go.set()
        sink.go.set()
        sql(w.source_conninfo, STEADY_SQL, w.session_id, seq, w.source_region)  # warm-up
        children = [source, sink, reader]
        wait_until(lambda: any(r for r, _, _ in sink.take()), 60, "the warm-up row", children)
        start_ms, total, took = write(ctx, w, first, rate, seconds)

        def applied_all() -> bool:
            for _, commits, applied_ms in sink.take():
                applied.extend(applied_ms - c for c in commits if c >= start_ms)
            for seen in reader.take():
                in_topic.extend(ms for n, ms in seen if first <= n < first + total)
            return len(applied) >= total and len(in_topic) >= total

        wait_until(applied_all, 60, "our sink to apply the steady rows", children)
    return applied, in_topic, total / took


def steady_peer(
    ctx: SpawnContext, w: Wiring, seq: int, rate: float, seconds: float
) -> tuple[list[float], float]:
    """Commit → received latencies (ms) of the writer's rows through the peer, and the rate.
    Rows before and after the writer's push kcat's 1 KiB reads (``KCAT_HELD_ROWS``): in a
    steady stream, later rows do that."""
    slot, topic = f"bench_peer_steady_{uuid.uuid4().hex[:6]}", f"{w.topic}.peer-steady"
    create_peer_slot(w, slot, topic)
    latencies: list[float] = []
    first = seq + PEER_WARMUP_ROWS
    with (
        peer_pipe(w, slot, topic) as pipe,
        running(ctx, "peer-consumer", consumer_child, w.bootstrap, topic, "wal2json") as peer,
    ):
        for warmup in range(seq, first):
            sql(w.source_conninfo, STEADY_SQL, w.session_id, warmup, w.source_region)
            if peer.take():
                break
            time.sleep(0.05)
        else:
            raise SystemExit("bench: the peer passed none of the warm-up rows")
        _, total, took = write(ctx, w, first, rate, seconds)
        for trailing in range(first + total, first + total + KCAT_HELD_ROWS * 2):
            sql(w.source_conninfo, STEADY_SQL, w.session_id, trailing, w.source_region)

        def received_all() -> bool:
            for seen in peer.take():
                latencies.extend(ms for n, ms in seen if first <= n < first + total)
            return len(latencies) >= total

        wait_until(received_all, 60, "the peer's steady rows", [*pipe, peer])
    return latencies, total / took


def write(
    ctx: SpawnContext, w: Wiring, first_seq: int, rate: float, seconds: float
) -> tuple[int, int, float]:
    with running(ctx, "writer", writer_child, w, first_seq, rate, seconds) as writer:
        writer.go.set()
        wait_until(lambda: bool(writer.take()), seconds * 2 + 60, "the writer")
    start_ms, total, took = writer.taken[0]
    return int(start_ms), int(total), float(took)


# --- running it all -------------------------------------------------------------------------------


def measure(args: argparse.Namespace) -> dict[str, Any]:
    ctx = mp.get_context("spawn")
    profile_dir = Path(args.profile).resolve() if args.profile else None
    if profile_dir is not None:
        profile_dir.mkdir(parents=True, exist_ok=True)
    profiles: list[str] = []

    def profile(name: str) -> str | None:
        if profile_dir is None:
            return None
        profiles.append(str(profile_dir / f"{name}.prof"))
        return profiles[-1]

    port_base = int(os.environ.get("BENCH_PORT_BASE") or free_port_base())
    figures: dict[str, Any] = {"rows": args.rows, "rate": args.rate, "seconds": args.seconds}
    busy = busy_cores_seconds()
    time.sleep(1.0)
    figures["background_cores"] = busy_cores_seconds() - busy  # before anything of ours runs
    with private_harness("bench-cdc", SERVERS, port_base) as h:
        print(f"== private harness on ports from {port_base}; our slot and first snapshot")
        w = prepare(h)
        first_run(ctx, w)
        # Steady first: a sink that stalls on the burst cannot take these figures with it.
        print(f"== steady: ours, {args.rate:g} rows/s for {args.seconds:g} s")
        ours_ms, topic_ms, ours_rate = steady_ours(ctx, w, 1, args.rate, args.seconds, profile)
        seq = round(args.rate * args.seconds) + 2
        print(f"== steady: pg_recvlogical | kcat, {args.rate:g} rows/s for {args.seconds:g} s")
        peer_ms, peer_rate = steady_peer(ctx, w, seq, args.rate, args.seconds)
        retire(w, w.topic, w.dead_letter_topic, f"{w.topic}.peer-steady")

        print("== a new pair of databases, slots and topics for the bursts")
        figures["burst"] = bursts(ctx, h, args.rows, profile)
    figures["steady"] = {
        "ours": latency_figures(ours_ms, ours_rate),
        "ours_topic": latency_figures(topic_ms, ours_rate),
        "peer": latency_figures(peer_ms, peer_rate),
    }
    figures["profiles"] = profiles
    return figures


def latency_figures(ms: list[float], rate: float) -> dict[str, float]:
    return {
        "count": len(ms),
        "rate": rate,
        **{f"p{p}_ms": percentile(ms, p) for p in (50, 95, 99)},
        "max_ms": max(ms, default=float("nan")),
    }


def report(f: dict[str, Any]) -> None:
    burst, steady = f["burst"], f["steady"]
    print(
        f"\nCDC of dialog_turns, {os.cpu_count()} CPUs, fresh broker (noida-db), PostgreSQL 15;"
        f" other processes kept {f['background_cores']:.2f} cores busy before the run"
    )
    print(
        f"\n{'steady, single-row transactions':<46} {'rows/s':>8} {'rows':>6} {'p50 ms':>7}"
        f" {'p95 ms':>7} {'p99 ms':>7} {'max ms':>7}"
    )
    labels = {
        "ours": "switchyard, commit → applied in the standby",
        "ours_topic": "switchyard, commit → received from its topic",
        "peer": "peer, commit → received from its topic",
    }
    for key, label in labels.items():
        s = steady[key]
        print(
            f"{label:<46} {s['rate']:>8.0f} {s['count']:>6} {s['p50_ms']:>7.1f}"
            f" {s['p95_ms']:>7.1f} {s['p99_ms']:>7.1f} {s['max_ms']:>7.1f}"
        )
    print(f"target: switchyard p99 < 100 ms (now {steady['ours']['p99_ms']:.1f} ms)")
    print(
        f"\n{'burst of ' + str(f['rows']) + ' rows, committed before reading':<46} {'rows/s':>8}"
        f" {'seconds':>8} {'first s':>8} {'client':>7} {'broker':>7} {'machine':>8}"
    )
    rows = [
        *((f"switchyard source → broker, run {i} of 2", b) for i, b in enumerate(burst["ours"], 1)),
        *(
            (f"pg_recvlogical | wal2json | kcat, run {i} of 2", b)
            for i, b in enumerate(burst["peer"], 1)
        ),
        ("switchyard sink, broker → standby", burst["sink"]),
    ]
    for label, b in rows:
        first = "-" if b["first_seconds"] is None else f"{b['first_seconds']:.2f}"
        print(
            f"{label:<46} {b['rows'] / b['seconds']:>8.0f} {b['seconds']:>8.2f}"
            f" {first:>8} {b['client_cores']:>7.2f} {b['broker_cores']:>7.2f}"
            f" {b['busy_cores']:>8.2f}"
        )
    rates = {k: [b["rows"] / b["seconds"] for b in burst[k]] for k in ("ours", "peer")}
    means = statistics.mean(rates["ours"]) / statistics.mean(rates["peer"])
    bests = max(rates["ours"]) / max(rates["peer"])
    print(
        f"ratio switchyard / peer into the broker: {means:.2f}x of the means, {bests:.2f}x of the"
        " best runs (target ≥ 0.7x)"
    )
    sink = burst["sink"]
    if sink["stalled"]:
        print(
            f"sink STALLED after {sink['rows']} rows: nothing applied for"
            f" {STALL_SECONDS:g} s (see its errors above); target ≥ 20000 rows/s"
        )
    else:
        print(f"sink applied {sink['rows'] / sink['seconds']:.0f} rows/s (target ≥ 20000)")
    print(
        "\n'first s': until the first transaction (ours) or row (peer) arrived. Cores used during"
        " the phase by 'client': the\nsource's or sink's process, or pg_recvlogical + kcat;"
        " 'broker': noida-db (its CPU grows with the data it keeps,\nreal Kafka's does not);"
        f" 'machine': all of it ({os.cpu_count()} cores: PostgreSQL, the broker and all else)."
    )
    if f["background_cores"] > 0.25:
        print(
            "warning: other processes were busy before the run; these figures understate both"
            " pipelines (rerun on a quiet machine)"
        )
    for path in f.get("profiles", []):
        print_profile(path)


def print_profile(path: str, top: int = 15) -> None:
    if not Path(path).exists():
        return
    text = io.StringIO()
    stats = pstats.Stats(path, stream=text)
    stats.strip_dirs().sort_stats("tottime").print_stats(top)
    print(f"\n== {Path(path).stem}: top {top} functions by own time ({path})")
    print(text.getvalue().split("ncalls", 1)[-1].join(["   ncalls", ""]).rstrip())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000, help="rows in the bursts")
    parser.add_argument("--seconds", type=float, default=20.0, help="steady phase length")
    parser.add_argument("--rate", type=float, default=1000.0, help="steady transactions/s")
    parser.add_argument("--profile", metavar="DIR", help="cProfile our source and sink")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()
    # A plain `kill` still stops the children and the private harness (the `finally`s run).
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    figures = measure(args)
    if args.json:
        print(json.dumps(figures))
    else:
        report(figures)


if __name__ == "__main__":
    main()
