"""The CDC sink: other regions' changes applied to this region's database while it is a standby
(``switchyard cdc sink --region B``).

Per fetched batch, one database transaction: check the region's own role and epoch (``FOR SHARE``
on ``region_state``, so a promotion waits for the batch and every later batch sees it), apply
each complete source transaction the cursor admits (``domain/cdc.py``), park what cannot be
applied in the dead-letter topic, and store the cursor and the next offsets in ``cdc_applied``;
commit; only then commit the offsets to the consumer group. The stored cursor is the truth: a
restart seeks to it, and a replayed or duplicated transaction changes nothing.

Never applied: transactions behind an unaccepted gap (held, reported), transactions from an
older epoch than this region's (parked, reported: a deposed primary's late writes), anything
while this region is primary (the sink idles: after a promotion the direction has changed).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson
import psycopg
from psycopg.types.json import Jsonb

from switchyard.db.region_tables import REPLICATED_TABLES
from switchyard.domain.cdc import (
    Gap,
    GapReason,
    Heartbeat,
    Resume,
    SinkCursor,
    Transaction,
    Verdict,
)
from switchyard.domain.secrets import Secret
from switchyard.errors import FatalError, SwitchyardError, TransientError
from switchyard.observability.logging import log_event
from switchyard.ports.events import Publisher, Record, Subscriber, TopicPartition, Topics
from switchyard.replication.apply import Applier
from switchyard.replication.catalog import table_shape
from switchyard.replication.envelope import (
    ERROR_HEADER,
    ChangeRecord,
    MalformedRecord,
    parse,
    source_block,
)
from switchyard.replication.source import SINK_ORIGIN_PREFIX
from switchyard.replication.values import SchemaMismatch

_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SinkSettings:
    region: str  # the standby this sink writes to
    conninfo: Secret
    topics: dict[str, str]  # source region -> its topic
    dead_letter_topic: str
    group_id: str
    batch_records: int = 5000
    status_seconds: float = 1.0

    @property
    def origin(self) -> str:
        return origin_name(self.region)


def origin_name(region: str) -> str:
    """The replication origin a sink applies under (never re-published by a source)."""
    return f"{SINK_ORIGIN_PREFIX}_{region.replace('-', '_')}"


@dataclass(frozen=True, slots=True)
class Applied:
    """What one committed batch did, for metrics and benchmarks."""

    transactions: int
    rows: int
    commit_ms: tuple[int, ...]  # source commit time of each applied transaction
    applied_ms: int
    parked: int
    stale: int


class TargetIsPrimary(Exception):  # noqa: N818 - a control-flow signal, named for what it says
    pass


@dataclass
class _SourceState:
    region: str
    topic: str
    cursor: SinkCursor
    offsets: dict[int, int]
    partial: list[ChangeRecord] = field(default_factory=list)
    partial_poisoned: bool = False
    epoch: int = 0
    commit_ms: int | None = None
    heartbeat_ms: int | None = None
    dead_letters: int = 0
    stale: int = 0


@dataclass
class _Batch:
    """Work gathered from fetched records, done in one database transaction."""

    apply: list[tuple[_SourceState, Transaction]] = field(default_factory=list)
    park: list[tuple[Record, str]] = field(default_factory=list)
    gaps: list[tuple[_SourceState, Gap]] = field(default_factory=list)
    held: bool = False


class ChangeSink:
    def __init__(
        self,
        settings: SinkSettings,
        subscriber: Callable[[], Subscriber],
        publisher: Callable[[], Publisher],
        topics: Topics,
        *,
        on_applied: Callable[[Applied], None] = lambda applied: None,
        on_gap: Callable[[str, Gap], None] = lambda source, gap: None,
    ) -> None:
        self._s = settings
        self._subscriber = subscriber
        self._new_publisher = publisher
        self._pub: Publisher | None = None
        self._topics = topics
        self._on_applied = on_applied
        self._on_gap = on_gap

    def run(self, stop: Callable[[], bool]) -> None:
        self._topics.ensure(self._s.dead_letter_topic)
        delay = 0.5
        while not stop():
            try:
                self._session(stop)
                delay = 0.5
            except TargetIsPrimary:
                time.sleep(1.0)
            except (SwitchyardError, psycopg.OperationalError) as exc:
                # The stored cursor is the truth: a new connection and a new group member
                # resume from it (e.g. after the broker restarted and forgot the group).
                log_event(_log, "cdc.sink.retry", level=logging.WARNING, error=str(exc))
                time.sleep(delay)
                delay = min(delay * 2, 5.0)

    # -- one connection and one consumer ---------------------------------------------------
    def _session(self, stop: Callable[[], bool]) -> None:
        s = self._s
        with psycopg.connect(s.conninfo.reveal()) as conn:
            _prepare_connection(conn, s.origin)
            self._require_standby(conn)
            shapes = {t: table_shape(conn, t) for t in REPLICATED_TABLES}
            conn.commit()
            applier = Applier(shapes)
            sources = {
                topic: _load_state(conn, region, topic) for region, topic in s.topics.items()
            }
            conn.commit()
            subscriber = self._subscriber()
            try:
                subscriber.subscribe(
                    list(sources),
                    lambda parts: {tp: sources[tp.topic].offsets.get(tp.partition) for tp in parts},
                )
                self._consume(conn, applier, sources, subscriber, stop)
            finally:
                subscriber.close()

    def _consume(
        self,
        conn: psycopg.Connection[Any],
        applier: Applier,
        sources: dict[str, _SourceState],
        subscriber: Subscriber,
        stop: Callable[[], bool],
    ) -> None:
        last_status = 0.0
        while not stop():
            now = time.monotonic()
            if now - last_status >= self._s.status_seconds:
                self._status(conn, sources, subscriber)
                last_status = now
                holding = any(st.cursor.holding for st in sources.values())
                if holding and self._gap_accepted(conn, sources):
                    return  # re-read from the stored position with the accepted cursor
            if any(st.cursor.holding for st in sources.values()):
                time.sleep(0.2)
                continue
            records = subscriber.fetch(self._s.batch_records, 0.05)
            if not records:
                continue
            batch = self._gather(records, sources)
            self._commit(conn, applier, batch, sources)
            subscriber.commit(
                {
                    TopicPartition(st.topic, p): o
                    for st in sources.values()
                    for p, o in st.offsets.items()
                }
            )
            for state, gap in batch.gaps:
                log_event(
                    _log,
                    "cdc.sink.gap",
                    level=logging.ERROR,
                    source=state.region,
                    reason=gap.reason.value,
                    sentence=gap.sentence(state.region),
                )
                self._on_gap(state.region, gap)
            if batch.held:
                return  # records fetched after the gap were not applied: re-read them later

    # -- records -> work -------------------------------------------------------------------
    def _gather(self, records: list[Record], sources: dict[str, _SourceState]) -> _Batch:
        batch = _Batch()
        now_ms = int(time.time() * 1000)
        for record in records:
            st = sources[record.topic]
            if st.cursor.holding:
                batch.held = True
                break
            try:
                parsed = parse(record.headers, record.key, record.value)
            except MalformedRecord as exc:
                batch.park.append((record, f"malformed: {exc}"))
                st.dead_letters += 1
                st.partial_poisoned = True
                st.offsets[record.partition] = record.offset + 1
                continue
            if isinstance(parsed, Resume):
                st.partial.clear()  # an unfinished transaction is re-sent after a restart
                st.partial_poisoned = False
                if self._control(batch, st, record, st.cursor.resumed(parsed, now_ms)):
                    break
                continue
            if isinstance(parsed, Heartbeat):
                self._interrupted(batch, st, record)
                if self._control(batch, st, record, st.cursor.heartbeat(parsed, now_ms)):
                    break
                st.heartbeat_ms = parsed.at_ms
                continue
            if st.partial and st.partial[0].source.lsn != parsed.source.lsn:
                self._interrupted(batch, st, record)
            st.partial.append(parsed)
            if parsed.index < parsed.count:
                continue
            tx = _transaction(st.partial)
            poisoned = st.partial_poisoned
            st.partial, st.partial_poisoned = [], False
            if tx is None or poisoned:
                batch.park.append((record, "transaction with malformed records"))
            verdict, cursor = st.cursor.admit(parsed.source, now_ms)
            if verdict is Verdict.HOLD:
                before = st.cursor
                st.cursor = cursor
                self._note_gap(batch, st, before)
                batch.held = True
                break
            st.cursor = cursor
            if verdict is Verdict.APPLY and tx is not None and not poisoned:
                batch.apply.append((st, tx))
            if st.cursor.holding:
                batch.held = True
                break
            st.offsets[record.partition] = record.offset + 1
        return batch

    def _control(self, batch: _Batch, st: _SourceState, record: Record, cursor: SinkCursor) -> bool:
        """A control record moved the cursor to ``cursor``; it is consumed either way (it
        carries no data). True when the batch must stop here: a gap now holds."""
        before, st.cursor = st.cursor, cursor
        self._note_gap(batch, st, before)
        st.offsets[record.partition] = record.offset + 1
        if cursor.holding:
            batch.held = True
        return cursor.holding

    def _interrupted(self, batch: _Batch, st: _SourceState, record: Record) -> None:
        if st.partial:
            log_event(
                _log,
                "cdc.sink.incomplete_transaction",
                level=logging.ERROR,
                source=st.region,
                tx_seq=st.partial[0].source.tx_seq,
            )
            batch.park.append((record, "incomplete transaction"))
            st.dead_letters += 1
            st.partial.clear()
            st.partial_poisoned = False

    def _note_gap(self, batch: _Batch, st: _SourceState, before: SinkCursor) -> None:
        gap = st.cursor.gap
        if gap is not None and gap != before.gap:
            batch.gaps.append((st, gap))

    # -- work -> one database transaction -------------------------------------------------
    def _commit(
        self,
        conn: psycopg.Connection[Any],
        applier: Applier,
        batch: _Batch,
        sources: dict[str, _SourceState],
    ) -> None:
        epoch = self._require_standby(conn, lock=True)
        apply: list[tuple[_SourceState, Transaction]] = []
        stale: list[tuple[_SourceState, Transaction]] = []
        for st, tx in batch.apply:
            (stale if tx.source.epoch < epoch else apply).append((st, tx))
        planned: list[tuple[_SourceState, Transaction, list[Any]]] = []
        parked = list(batch.park)
        for st, tx in apply:
            try:
                planned.append((st, tx, applier.statements(tx.changes)))
            except SchemaMismatch as exc:
                parked.append((_as_record(st, tx), f"schema mismatch: {exc}"))
                st.dead_letters += 1
        for st, tx in stale:
            parked.append((_as_record(st, tx), f"stale epoch {tx.source.epoch} < {epoch}"))
            st.stale += 1
        with conn.cursor() as cur:
            try:
                # Whole batch in order, so runs of one statement span transactions and go
                # out pipelined; a snapshot chunk's range delete right after its own rows.
                pending: list[Any] = []
                for _st, tx, statements in planned:
                    pending += statements
                    if tx.chunk is not None:
                        applier.execute(cur, pending)
                        pending = []
                        applier.chunk_deletes(cur, tx.chunk, list(tx.changes))
                applier.execute(cur, pending)
            except (psycopg.DataError, psycopg.IntegrityError) as exc:
                # One of them cannot be applied: find which, park it, apply the others.
                conn.rollback()
                log_event(_log, "cdc.sink.isolating", level=logging.WARNING, error=str(exc))
                self._require_standby(conn, lock=True)
                planned = self._isolate(conn, applier, planned, parked)
            for st, tx, _statements in planned:
                st.epoch = tx.source.epoch
                st.commit_ms = tx.source.commit_ms
                if tx.chunk is not None:
                    st.cursor = st.cursor.chunk_applied(tx.chunk)
            self._park(parked)
            for st in sources.values():
                _store_state(cur, st)
        conn.commit()
        if planned or parked:
            self._on_applied(
                Applied(
                    transactions=len(planned),
                    rows=sum(len(tx.changes) for _, tx, _ in planned),
                    commit_ms=tuple(tx.source.commit_ms for _, tx, _ in planned),
                    applied_ms=int(time.time() * 1000),
                    parked=len(parked),
                    stale=len(stale),
                )
            )

    def _isolate(
        self,
        conn: psycopg.Connection[Any],
        applier: Applier,
        planned: list[tuple[_SourceState, Transaction, list[Any]]],
        parked: list[tuple[Record, str]],
    ) -> list[tuple[_SourceState, Transaction, list[Any]]]:
        kept = []
        with conn.cursor() as cur:
            for st, tx, statements in planned:
                try:
                    with conn.transaction():
                        applier.execute(cur, statements)
                        if tx.chunk is not None:
                            applier.chunk_deletes(cur, tx.chunk, list(tx.changes))
                    kept.append((st, tx, statements))
                except (psycopg.DataError, psycopg.IntegrityError) as exc:
                    parked.append((_as_record(st, tx), f"rejected by the standby: {exc}"))
                    st.dead_letters += 1
        return kept

    def _park(self, parked: list[tuple[Record, str]]) -> None:
        """Dead letters are acknowledged before the cursor moves past them."""
        if not parked:
            return
        if self._pub is None:
            self._pub = self._new_publisher()
        publisher = self._pub
        try:
            self._publish_dead_letters(publisher, parked)
        except FatalError as exc:
            # A producer the broker no longer knows (e.g. after a broker restart): a new one
            # next time; this batch is not committed, so its records come back.
            publisher.close()
            self._pub = None
            raise TransientError(f"the dead-letter publisher failed: {exc}") from None

    def _publish_dead_letters(self, publisher: Publisher, parked: list[tuple[Record, str]]) -> None:
        for record, reason in parked:
            publisher.publish(
                self._s.dead_letter_topic,
                record.key,
                record.value,
                headers=[
                    *((k, v) for k, v in record.headers.items()),
                    (ERROR_HEADER, reason.encode()[:1000]),
                    ("switchyard.source.topic", record.topic.encode()),
                    ("switchyard.source.offset", str(record.offset).encode()),
                ],
            )
            log_event(
                _log, "cdc.sink.dead_letter", level=logging.ERROR, topic=record.topic, reason=reason
            )
        if publisher.flush(10.0):
            raise TransientError("the dead-letter topic did not acknowledge in 10 s")

    def _require_standby(self, conn: psycopg.Connection[Any], *, lock: bool = False) -> int:
        row = conn.execute(
            "SELECT role, epoch FROM region_state WHERE region = %s"  # noqa: S608
            + (" FOR SHARE" if lock else ""),
            (self._s.region,),
        ).fetchone()
        if row is None or row[0] == "primary":
            conn.rollback()
            log_event(_log, "cdc.sink.idle", region=self._s.region, reason="target is primary")
            raise TargetIsPrimary(self._s.region)
        return int(row[1])

    # -- status and operators -------------------------------------------------------------
    def _status(
        self, conn: psycopg.Connection[Any], sources: dict[str, _SourceState], sub: Subscriber
    ) -> None:
        for st in sources.values():
            lag = 0
            try:
                for partition, offset in st.offsets.items() or {0: 0}.items():
                    lag += max(0, sub.high_watermark(TopicPartition(st.topic, partition)) - offset)
            except TransientError:
                lag = -1
            conn.execute(
                "UPDATE cdc_applied SET consumer_lag = %s, status_at = now() "
                "WHERE source_region = %s",
                (None if lag < 0 else lag, st.region),
            )
        conn.commit()

    def _gap_accepted(
        self, conn: psycopg.Connection[Any], sources: dict[str, _SourceState]
    ) -> bool:
        for st in sources.values():
            if not st.cursor.holding:
                continue
            fresh = _load_state(conn, st.region, st.topic)
            if not fresh.cursor.holding:
                conn.commit()
                return True
        conn.commit()
        return False


# -- storage of the cursor ---------------------------------------------------------------------


def _prepare_connection(conn: psycopg.Connection[Any], origin: str) -> None:
    conn.execute("SET synchronous_commit = off")  # the position commits with the data
    # As PostgreSQL's own apply workers do: the source checked the constraints, and its
    # cascades arrive as changes of their own. A snapshot chunk of a parent table may come
    # after a streamed change of a child row, so foreign keys must not be checked here.
    conn.execute("SET session_replication_role = replica")
    conn.execute("SET TIME ZONE 'UTC'")
    exists = conn.execute(
        "SELECT 1 FROM pg_replication_origin WHERE roname = %s", (origin,)
    ).fetchone()
    if exists is None:
        conn.execute("SELECT pg_replication_origin_create(%s)", (origin,))
    conn.execute("SELECT pg_replication_origin_session_setup(%s)", (origin,))
    conn.commit()


def _load_state(conn: psycopg.Connection[Any], region: str, topic: str) -> _SourceState:
    conn.execute(
        "INSERT INTO cdc_applied (source_region) VALUES (%s) ON CONFLICT DO NOTHING", (region,)
    )
    row = conn.execute(
        "SELECT stream_id::text, tx_seq, source_lsn, rebase, gap, resync, offsets, "
        "source_epoch, dead_letters, stale_refused FROM cdc_applied WHERE source_region = %s",
        (region,),
    ).fetchone()
    assert row is not None
    cursor = SinkCursor(
        stream_id=row[0],
        tx_seq=row[1],
        lsn=row[2],
        rebase=row[3],
        gap=_gap_from_json(row[4]),
        resync=row[5].get("id") if isinstance(row[5], dict) else None,
    )
    offsets = {int(k): int(v) for k, v in (row[6] or {}).items()}
    return _SourceState(
        region, topic, cursor, offsets, epoch=row[7], dead_letters=row[8], stale=row[9]
    )


def _store_state(cur: psycopg.Cursor[Any], st: _SourceState) -> None:
    c = st.cursor
    cur.execute(
        """
        UPDATE cdc_applied SET
            stream_id = %s, tx_seq = %s, source_lsn = %s, rebase = %s, gap = %s, resync = %s,
            offsets = %s, source_epoch = %s,
            source_commit_at = COALESCE(%s, source_commit_at),
            applied_at = CASE WHEN %s::timestamptz IS NULL THEN applied_at ELSE now() END,
            heartbeat_at = COALESCE(%s, heartbeat_at),
            dead_letters = %s, stale_refused = %s
        WHERE source_region = %s
        """,
        (
            c.stream_id,
            c.tx_seq,
            c.lsn,
            c.rebase,
            Jsonb(gap_to_json(c.gap)) if c.gap else None,
            Jsonb({"id": c.resync}) if c.resync else None,
            Jsonb({str(k): v for k, v in st.offsets.items()}),
            st.epoch,
            _ts(st.commit_ms),
            _ts(st.commit_ms),
            _ts(st.heartbeat_ms),
            st.dead_letters,
            st.stale,
            st.region,
        ),
    )
    st.commit_ms = None
    st.heartbeat_ms = None


def gap_to_json(gap: Gap) -> dict[str, Any]:
    return {
        "reason": gap.reason.value,
        "after_seq": gap.after_seq,
        "seen_seq": gap.seen_seq,
        "detected_ms": gap.detected_ms,
        "accepted": gap.accepted,
    }


def _gap_from_json(raw: Any) -> Gap | None:
    if not isinstance(raw, dict):
        return None
    return Gap(
        GapReason(raw["reason"]),
        int(raw["after_seq"]),
        int(raw["seen_seq"]),
        int(raw["detected_ms"]),
        bool(raw.get("accepted")),
    )


def accept_gap(conn: psycopg.Connection[Any], source_region: str, snapshot_id: str) -> Gap | None:
    """Operator action (``cdc resync``): accept the open gap of ``source_region`` in this
    standby, expecting snapshot ``snapshot_id``. Returns the gap accepted (None if none)."""
    row = conn.execute(
        "SELECT gap FROM cdc_applied WHERE source_region = %s FOR UPDATE", (source_region,)
    ).fetchone()
    gap = _gap_from_json(row[0]) if row else None
    if gap is None:
        return None
    cursor = SinkCursor(gap=gap).accept_gap(snapshot_id)
    assert cursor.gap is not None
    conn.execute(
        "UPDATE cdc_applied SET gap = %s, resync = %s, rebase = true WHERE source_region = %s",
        (Jsonb(gap_to_json(cursor.gap)), Jsonb({"id": snapshot_id}), source_region),
    )
    return cursor.gap


def _transaction(records: list[ChangeRecord]) -> Transaction | None:
    if [r.index for r in records] != list(range(1, records[-1].count + 1)):
        return None
    chunk = next((r.chunk for r in records if r.chunk is not None), None)
    changes = tuple(r.change for r in records if r.change is not None)
    return Transaction(records[-1].source, changes, chunk)


def _as_record(st: _SourceState, tx: Transaction) -> Record:
    """A whole transaction as one dead letter (the original records are already consumed)."""
    body = {
        "source": source_block(tx.source, topic=st.topic, db=""),
        "changes": [
            {"table": c.table, "op": c.op.value, "key": c.key, "before": c.before, "after": c.after}
            for c in tx.changes
        ],
    }
    return Record(st.topic, 0, -1, None, orjson.dumps(body), {"switchyard.kind": b"transaction"})


def _ts(ms: int | None) -> datetime | None:
    return None if ms is None else datetime.fromtimestamp(ms / 1000, UTC)
