"""The CDC source: a region's committed changes, read from its logical replication slot, published
to the region's topic (``switchyard cdc source --region A``).

One thread, one loop: read the slot's stream (pgoutput over the streaming replication protocol,
psycopg's low-level connection in COPY_BOTH mode) → assemble each transaction → publish its
records (idempotent, acks=all) → once the log acknowledged every record up to a transaction,
store the position (``cdc_source_positions``) and only then confirm it to the slot. A crash
therefore replays, never skips: everything after the stored position is decoded and published
again (the sink recognises the duplicates by LSN).

Also in the loop: heartbeats while idle (so lag never goes stale), epoch tracking (changes of
the region's own ``region_state`` row arrive in WAL order and stamp later transactions), and
incremental snapshots (``replication/snapshot.py``): when the slot is first created, when a
``cdc resync`` asks for one through ``cdc_signals``, and after a TRUNCATE.
"""

from __future__ import annotations

import contextlib
import logging
import select
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

import orjson
import psycopg
from psycopg import pq
from psycopg.pq.abc import PGconn

from switchyard.db.region_tables import PUBLICATION, REPLICATED_TABLES
from switchyard.domain.cdc import Change, Chunk, Heartbeat, Op, Resume, TxSource
from switchyard.domain.secrets import Secret
from switchyard.errors import FatalError, TransientError
from switchyard.observability.logging import log_event
from switchyard.ports.events import Publisher, Topics
from switchyard.replication import pgoutput
from switchyard.replication.catalog import slot_name, table_shape
from switchyard.replication.envelope import (
    KIND_HEADER,
    encode_changes,
    encode_chunk,
    encode_heartbeat,
    encode_resume,
)
from switchyard.replication.snapshot import Plan, SnapshotReader, Window
from switchyard.replication.values import json_converter, row_to_json

_log = logging.getLogger(__name__)

# Transactions the sink applied carry this replication origin; the source never re-publishes
# them (a demoted region that becomes primary again must not echo its peer's changes).
SINK_ORIGIN_PREFIX = "switchyard_cdc"
# Do not open a snapshot window while this many transactions wait for acknowledgement.
_MAX_PENDING_FOR_SNAPSHOT = 64


@dataclass(frozen=True)
class SourceSettings:
    region: str
    conninfo: Secret  # libpq conninfo of the region's database (a login with REPLICATION)
    database: str
    topic: str
    heartbeat_seconds: float = 1.0
    feedback_seconds: float = 0.2
    chunk_rows: int = 1000

    @property
    def slot(self) -> str:
        return slot_name(self.region)


@dataclass
class _Relation:
    table: str
    kind: str  # "data", "state", "signals" or "other"
    names: tuple[str, ...]
    converters: tuple[Callable[[str], object], ...]
    key: tuple[int, ...]  # indexes of the primary-key columns


@dataclass
class _Pending:
    """A published transaction waiting for its acknowledgement."""

    lsn: int
    tx_seq: int
    epoch: int
    plans: list[Plan]
    acked: bool = False


@dataclass
class _OpenTx:
    xid: int
    commit_us: int
    changes: list[Change] = field(default_factory=list)
    from_sink: bool = False
    state: dict[str, object] | None = None  # the region's region_state row, if it changed
    signals: list[dict[str, object]] = field(default_factory=list)
    truncated: list[str] = field(default_factory=list)


class NotPrimary(Exception):  # noqa: N818 - a control-flow signal, named for what it says
    """The region has no slot yet and is not primary: nothing to stream."""


class ChangeSource:
    def __init__(
        self,
        settings: SourceSettings,
        publisher: Callable[[], Publisher],
        topics: Topics,
        *,
        on_published: Callable[[int], None] = lambda rows: None,
    ) -> None:
        self._s = settings
        self._new_publisher = publisher
        self._publisher: Publisher | None = None
        self._topics = topics
        self._on_published = on_published
        self._fatal: Exception | None = None

    # -- lifecycle -----------------------------------------------------------------------
    def run(self, stop: Callable[[], bool]) -> None:
        """Stream until ``stop()``. After a database or broker outage, and after the publisher
        failed for good (an idempotent producer whose sequence the broker lost, e.g. across a
        broker restart), start again from the stored position with a new publisher: what was
        not acknowledged is published again, never skipped."""
        self._topics.ensure(self._s.topic)
        delay = 0.5
        try:
            while not stop():
                if self._publisher is None:
                    self._publisher = self._new_publisher()
                try:
                    self._stream(self._publisher, stop)
                    delay = 0.5
                    continue
                except NotPrimary:
                    time.sleep(1.0)
                    continue
                except (TransientError, psycopg.OperationalError) as exc:
                    log_event(
                        _log, "cdc.source.retry", level=logging.WARNING, error=str(exc), delay=delay
                    )
                except FatalError as exc:
                    log_event(
                        _log, "cdc.source.publisher_failed", level=logging.ERROR, error=str(exc)
                    )
                    self._publisher.close()
                    self._publisher = None
                time.sleep(delay)
                delay = min(delay * 2, 5.0)
        finally:
            if self._publisher is not None:
                self._publisher.close()

    def _stream(self, publisher: Publisher, stop: Callable[[], bool]) -> None:
        s = self._s
        with psycopg.connect(s.conninfo.reveal(), autocommit=True) as sql:
            stream = _Stream(s, sql, publisher, self._on_published)
            stream.start()
            repl = _replication_connection(s.conninfo.reveal())
            try:
                stream.follow(repl, stop)
            finally:
                repl.finish()
                with contextlib.suppress(FatalError):  # the caller replaces the publisher
                    publisher.flush(10.0)


class _Stream:
    """One connection's worth of streaming; state reloaded from the database on each."""

    def __init__(
        self,
        s: SourceSettings,
        sql: psycopg.Connection[tuple[object, ...]],
        publisher: Publisher,
        on_published: Callable[[int], None],
    ) -> None:
        self._s = s
        self._sql = sql
        self._pub = publisher
        self._on_published = on_published
        self._relations: dict[int, _Relation] = {}
        self._pending: deque[_Pending] = deque()
        self._fatal: Exception | None = None
        self._open: _OpenTx | None = None
        self._snapshots = SnapshotReader(sql, s.chunk_rows)
        self._window: Window | None = None
        self.stream_id = ""
        self.tx_seq = 0
        self.epoch = 0
        self.plans: list[Plan] = []
        self.confirmed = 0
        self._stream_end = 0
        self._last_publish = 0.0
        self._last_beat_lsn = -1
        self._last_feedback = 0.0
        self._fed_back = 0
        self._acked: _Pending | None = None  # acknowledged, position not stored yet

    # -- start: slot, stored position, resume marker -------------------------------------
    def start(self) -> None:
        s, sql = self._s, self._sql
        row = sql.execute(
            "SELECT stream_id::text, confirmed_lsn, tx_seq, epoch, snapshot "
            "FROM cdc_source_positions WHERE slot = %s",
            (s.slot,),
        ).fetchone()
        slot = sql.execute(
            "SELECT confirmed_flush_lsn::text FROM pg_replication_slots WHERE slot_name = %s",
            (s.slot,),
        ).fetchone()
        state = sql.execute(
            "SELECT role, epoch FROM region_state WHERE region = %s", (s.region,)
        ).fetchone()
        if state is None:
            raise FatalError(f"region {s.region} has no region_state row; run migrate first")
        new_stream = slot is None or row is None
        if slot is None:
            if state[0] != "primary":
                raise NotPrimary(s.region)
            created = sql.execute(
                "SELECT lsn::text FROM pg_create_logical_replication_slot(%s, 'pgoutput')",
                (s.slot,),
            ).fetchone()
            assert created is not None
            start_lsn = pgoutput.parse_lsn(str(created[0]))
        else:
            start_lsn = pgoutput.parse_lsn(str(slot[0]))
        if new_stream:
            self.stream_id = str(uuid.uuid4())
            self.tx_seq = int(str(row[2])) if row else 0
            self.epoch = int(str(state[1]))
            self.plans = [Plan.everything(self.stream_id, REPLICATED_TABLES)]
            self.confirmed = start_lsn
            self._store_position(self.confirmed, self.tx_seq, self.epoch, self.plans)
            log_event(
                _log, "cdc.source.slot_created", slot=s.slot, lsn=pgoutput.format_lsn(start_lsn)
            )
        else:
            assert row is not None
            self.stream_id = str(row[0])
            self.confirmed = max(int(str(row[1])), start_lsn)
            self.tx_seq = int(str(row[2]))
            self.epoch = int(str(row[3]))
            self.plans = Plan.load_all(row[4])
        self._stream_end = self.confirmed
        marker = Resume(
            region=s.region,
            epoch=self.epoch,
            stream_id=self.stream_id,
            tx_seq=self.tx_seq,
            lsn=self.confirmed,
            at_ms=_now_ms(),
            new_stream=new_stream,
            snapshot_id=self.plans[0].snapshot_id if new_stream else None,
        )
        self._pub.publish(s.topic, None, encode_resume(marker), headers=[(KIND_HEADER, b"resume")])
        log_event(
            _log,
            "cdc.source.resume",
            slot=s.slot,
            lsn=pgoutput.format_lsn(self.confirmed),
            tx_seq=self.tx_seq,
            new_stream=new_stream,
        )

    # -- the loop ------------------------------------------------------------------------
    def follow(self, conn: PGconn, stop: Callable[[], bool]) -> None:
        s = self._s
        command = (
            f"START_REPLICATION SLOT {s.slot} LOGICAL {pgoutput.format_lsn(self.confirmed)} "
            f"(proto_version '1', publication_names '{PUBLICATION}')"
        )
        result = conn.exec_(command.encode())
        if result.status != pq.ExecStatus.COPY_BOTH:
            raise TransientError(f"START_REPLICATION failed: {_error(conn)}")
        conn.nonblocking = 1
        sock = conn.socket
        while not stop():
            n, data = conn.get_copy_data(1)
            if n > 0:
                self._on_copy_data(conn, data)
                continue
            if n == 0:
                self._housekeeping(conn)
                select.select([sock], [], [], 0.05)
                conn.consume_input()
                continue
            raise TransientError(f"replication stream ended: {_error(conn)}")

    def _on_copy_data(self, conn: PGconn, data: memoryview) -> None:
        frame = pgoutput.parse_copy_data(data)
        if isinstance(frame, pgoutput.Keepalive):
            if self._open is None:
                self._stream_end = max(self._stream_end, frame.wal_end)
            if frame.reply_requested:
                self._housekeeping(conn, force_feedback=True)
            return
        message = pgoutput.decode(frame.payload)
        match message:
            case pgoutput.Insert(relid=relid, new=new):
                self._row_change(relid, Op.CREATE, None, new)
            case pgoutput.Update(relid=relid, old=old, new=new):
                self._row_change(relid, Op.UPDATE, old, new)
            case pgoutput.Delete(relid=relid, old=old):
                self._row_change(relid, Op.DELETE, old, None)
            case pgoutput.Begin(xid=xid, commit_ts_us=commit_us):
                self._open = _OpenTx(xid, commit_us)
            case pgoutput.Commit(end_lsn=end_lsn):
                self._commit(end_lsn)
            case pgoutput.Relation():
                self._relations[message.relid] = self._relation(message)
            case pgoutput.Origin(name=name):
                if self._open is not None and name.startswith(SINK_ORIGIN_PREFIX):
                    self._open.from_sink = True
            case pgoutput.Truncate(relids=relids):
                if self._open is not None:
                    for relid in relids:
                        rel = self._relations.get(relid)
                        if rel is not None and rel.kind == "data":
                            self._open.truncated.append(rel.table)
            case _:
                pass

    def _relation(self, message: pgoutput.Relation) -> _Relation:
        table = message.name
        if message.namespace != "public":
            kind = "other"
        elif table in REPLICATED_TABLES:
            kind = "data"
        elif table == "region_state":
            kind = "state"
        elif table == "cdc_signals":
            kind = "signals"
        else:
            kind = "other"
        columns = message.columns
        return _Relation(
            table=table,
            kind=kind,
            names=tuple(c.name for c in columns),
            converters=tuple(json_converter(c.type_oid) for c in columns),
            key=tuple(i for i, c in enumerate(columns) if c.is_key),
        )

    def _row_change(
        self,
        relid: int,
        op: Op,
        old: tuple[object, ...] | None,
        new: tuple[object, ...] | None,
    ) -> None:
        tx = self._open
        rel = self._relations[relid]
        if tx is None or rel.kind == "other":
            return
        after = _row(rel, new) if new is not None else None
        if rel.kind == "data":
            if tx.from_sink:
                return
            before = _row(rel, old) if old is not None else None
            image = after if after is not None else before
            assert image is not None
            key = {rel.names[i]: image.get(rel.names[i]) for i in rel.key}
            if op is Op.UPDATE and before is not None:
                # The key changed (or REPLICA IDENTITY FULL): the old key locates the row.
                key = {rel.names[i]: before.get(rel.names[i]) for i in rel.key}
            tx.changes.append(Change(rel.table, op, key, before, after))
            if self._window is not None:
                self._window.touched(rel.table, image)
        elif rel.kind == "state" and after is not None and after.get("region") == self._s.region:
            tx.state = after
        elif rel.kind == "signals" and after is not None and op is Op.CREATE:
            tx.signals.append(after)

    def _commit(self, end_lsn: int) -> None:
        tx = self._open
        self._open = None
        if tx is None:
            return
        if tx.changes:
            commit_ms = pgoutput.pg_us_to_unix_ms(tx.commit_us)
            self._publish(self._next_tx(end_lsn, commit_ms, tx.xid), tx.changes, None)
        if tx.state is not None:
            self.epoch = int(str(tx.state["epoch"]))
            log_event(_log, "cdc.source.epoch", epoch=self.epoch, role=str(tx.state.get("role")))
        for signal in tx.signals:
            self._on_signal(signal, end_lsn)
        for table in tx.truncated:
            # A TRUNCATE travels as a re-sync of the table: the sink's chunks then delete
            # every row the source no longer has.
            self.plans.append(Plan.everything(str(uuid.uuid4()), (table,)))
        if not self._pending:
            self._stream_end = max(self._stream_end, end_lsn)
        if tx.state is not None:
            self._beat(end_lsn)

    def _on_signal(self, signal: dict[str, object], end_lsn: int) -> None:
        kind = signal.get("kind")
        payload = signal.get("payload")
        body = orjson.loads(str(payload)) if isinstance(payload, str) else {}
        if kind == "snapshot":
            tables = tuple(
                t for t in body.get("tables", REPLICATED_TABLES) if t in REPLICATED_TABLES
            )
            snapshot_id = str(body.get("id") or uuid.uuid4())
            self.plans.append(Plan.everything(snapshot_id, tables or REPLICATED_TABLES))
            log_event(_log, "cdc.source.snapshot_requested", snapshot=snapshot_id, tables=tables)
            return
        window = self._window
        if window is None:
            return
        signal_id = int(str(signal.get("id")))
        if kind == "watermark_low" and signal_id == window.low_id:
            window.open()
        elif kind == "watermark_high" and signal_id == window.high_id:
            self._window = None
            chunk, changes = window.close(self.plans)
            self.plans = Plan.advance(self.plans, chunk)
            snapshot = "last" if chunk.last else "incremental"
            self._publish(self._next_tx(end_lsn, _now_ms(), None, snapshot), changes, chunk)

    def _next_tx(
        self, lsn: int, commit_ms: int, txid: int | None, snapshot: str = "false"
    ) -> TxSource:
        """The source block of the next transaction published (numbered tx_seq + 1)."""
        return TxSource(
            region=self._s.region,
            epoch=self.epoch,
            stream_id=self.stream_id,
            tx_seq=self.tx_seq + 1,
            lsn=lsn,
            commit_ms=commit_ms,
            txid=txid,
            snapshot=snapshot,
        )

    def _publish(self, source: TxSource, changes: list[Change], chunk: Chunk | None) -> None:
        s = self._s
        extra = 1 if chunk is not None else 0
        records = encode_changes(
            source, changes, topic=s.topic, db=s.database, now_ms=_now_ms(), extra=extra
        )
        pending = _Pending(source.lsn, source.tx_seq, source.epoch, list(self.plans))
        self._pending.append(pending)

        def acked(error: Exception | None) -> None:
            if error is None:
                pending.acked = True
            else:
                self._fatal = error

        publish = self._pub.publish
        topic = s.topic
        last = len(records) - 1 if not extra else -1
        for i, (key, value) in enumerate(records):
            publish(topic, key, value, on_ack=acked if i == last else None)
        if chunk is not None:
            value = encode_chunk(source, chunk, topic=topic, db=s.database, index=len(records) + 1)
            publish(topic, None, value, headers=[(KIND_HEADER, b"chunk")], on_ack=acked)
        self.tx_seq = source.tx_seq
        self._last_publish = time.monotonic()
        self._on_published(len(changes))

    # -- acknowledgements, position, heartbeats, snapshots --------------------------------
    def _housekeeping(self, conn: PGconn, *, force_feedback: bool = False) -> None:
        self._pub.poll(0)
        if self._fatal is not None:
            raise FatalError(f"the event log lost a record: {self._fatal}")
        while self._pending and self._pending[0].acked:
            self._acked = self._pending.popleft()
        now = time.monotonic()
        acked = self._acked
        # Storing the position is a write on the primary: at most once per feedback period
        # (and when the server asks for a reply), not once per acknowledged transaction.
        due = force_feedback or now - self._last_feedback >= self._s.feedback_seconds
        if acked is not None and due:
            self._store_position(acked.lsn, acked.tx_seq, acked.epoch, acked.plans)
            self.confirmed = max(self.confirmed, acked.lsn)
            self._acked = None
            force_feedback = True
        if (
            self._acked is None
            and not self._pending
            and self._open is None
            and self._stream_end > self.confirmed
        ):
            # Nothing of ours lies between the stored position and the end of the stream:
            # the slot may move on without a new stored position (same tx_seq).
            self.confirmed = self._stream_end
        if (
            self.confirmed > self._fed_back
            and (force_feedback or now - self._last_feedback >= self._s.feedback_seconds)
        ) or force_feedback:
            self._feedback(conn)
        idle = not self._pending and self._open is None
        if idle and now - self._last_publish >= self._s.heartbeat_seconds:
            self._beat(self._stream_end)
        if self._window is None and self.plans and len(self._pending) < _MAX_PENDING_FOR_SNAPSHOT:
            self._window = self._snapshots.open_window(self.plans[0])

    def _beat(self, lsn: int) -> None:
        beat = Heartbeat(
            region=self._s.region,
            epoch=self.epoch,
            stream_id=self.stream_id,
            tx_seq=self.tx_seq,
            lsn=lsn,
            at_ms=_now_ms(),
        )
        self._pub.publish(
            self._s.topic, None, encode_heartbeat(beat), headers=[(KIND_HEADER, b"heartbeat")]
        )
        self._last_publish = time.monotonic()
        self._last_beat_lsn = lsn

    def _feedback(self, conn: PGconn) -> None:
        lsn = self.confirmed
        self._fed_back = lsn
        message = pgoutput.standby_status_update(
            lsn, lsn, lsn, now_us=pgoutput.pg_now_us(time.time())
        )
        if conn.put_copy_data(message) != 1 or conn.flush() == -1:
            raise TransientError(f"cannot send feedback: {_error(conn)}")
        self._last_feedback = time.monotonic()

    def _store_position(self, lsn: int, tx_seq: int, epoch: int, plans: list[Plan]) -> None:
        """Written before the slot is told: the stored position may run ahead of the slot's,
        never behind it, so a restart never numbers a transaction twice."""
        self._sql.execute(
            """
            INSERT INTO cdc_source_positions
                (slot, stream_id, topic, confirmed_lsn, tx_seq, epoch, snapshot, updated_at)
            VALUES (%s, %s, %s, %s, %s, %s, %s, now())
            ON CONFLICT (slot) DO UPDATE SET
                stream_id = EXCLUDED.stream_id, topic = EXCLUDED.topic,
                confirmed_lsn = EXCLUDED.confirmed_lsn, tx_seq = EXCLUDED.tx_seq,
                epoch = EXCLUDED.epoch, snapshot = EXCLUDED.snapshot, updated_at = now()
            """,
            (
                self._s.slot,
                self.stream_id,
                self._s.topic,
                lsn,
                tx_seq,
                epoch,
                psycopg.types.json.Jsonb(Plan.dump_all(plans)),
            ),
        )


def _row(rel: _Relation, values: tuple[object, ...]) -> dict[str, object]:
    return row_to_json(rel.converters, values, rel.names)  # type: ignore[arg-type]


def _replication_connection(conninfo: str) -> PGconn:
    params = psycopg.conninfo.conninfo_to_dict(conninfo)
    params["replication"] = "database"
    params["options"] = "-c TimeZone=UTC -c DateStyle=ISO"
    conn: PGconn = pq.PGconn.connect(psycopg.conninfo.make_conninfo("", **params).encode())
    if conn.status != pq.ConnStatus.OK:
        message = _error(conn)
        conn.finish()
        raise TransientError(f"cannot open the replication connection: {message}")
    return conn


def _error(conn: PGconn) -> str:
    return str(conn.error_message.decode(errors="replace")).strip()


def _now_ms() -> int:
    return int(time.time() * 1000)


__all__ = ["ChangeSource", "NotPrimary", "SourceSettings", "table_shape"]
