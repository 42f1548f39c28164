"""Change data capture as values, and the sink's rules for what to apply (pure).

A source region's changes travel as *transactions*: every row change of one PostgreSQL
transaction, stamped with the source's region, epoch, stream id (one per replication slot),
a per-source transaction sequence number ``tx_seq`` and the commit's end LSN. Between them
flow control records: heartbeats (the source is alive and has published everything up to an
LSN) and resume markers (a source process started: from which confirmed position it replays).

The sink keeps a ``SinkCursor`` per source region, stored with the data it applied, and asks it
what to do with each record. The rules, in short:

- A transaction at or below the applied LSN was applied before: a duplicate, skipped.
- Otherwise it must carry ``tx_seq`` = applied + 1; a jump is a **gap** (messages lost by the
  broker, a truncated or recreated topic). Nothing after a gap is applied until an operator
  accepts it and a re-sync (incremental snapshot) is under way: never skipped silently.
- A source that restarts replays everything after its confirmed position, and may number the
  replayed transactions differently (snapshot chunks are not replayed the same way), so its
  resume marker says which ``tx_seq`` it had confirmed: if the sink holds at least that much,
  it re-bases on the next new transaction; if not, acknowledged changes are missing: a gap.
- A new stream id (a recreated slot) is a gap as well; the source snapshots every table when it
  creates a slot, so that gap heals when the snapshot's last chunk is applied.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any

# JSON values as they travel (row images, keys).
Json = Any


class Op(StrEnum):
    CREATE = "c"
    UPDATE = "u"
    DELETE = "d"
    READ = "r"  # a snapshot row


@dataclass(frozen=True, slots=True)
class TxSource:
    """Where one transaction came from (the envelope's ``source`` block)."""

    region: str
    epoch: int
    stream_id: str
    tx_seq: int
    lsn: int  # the commit's end LSN: the position after this transaction
    commit_ms: int
    txid: int | None  # None for snapshot chunks
    snapshot: str = "false"  # Debezium's values: "false", "incremental", "last"


@dataclass(frozen=True, slots=True)
class Change:
    table: str
    op: Op
    key: dict[str, Json]  # primary-key columns
    before: dict[str, Json] | None
    after: dict[str, Json] | None


@dataclass(frozen=True, slots=True)
class Chunk:
    """One slice of an incremental snapshot: the rows of ``table`` with keys in
    (``after_key``, ``through_key``] as they were, except ``keep`` (rows that changed while the
    chunk was read: their changes travel on their own). The sink deletes rows of the range that
    are neither in the chunk nor kept, so a re-sync also removes rows the source deleted."""

    snapshot_id: str
    table: str
    after_key: list[Json] | None
    through_key: list[Json] | None  # None: to the end of the table
    keep: tuple[tuple[Json, ...], ...]
    last: bool  # the last chunk of the whole snapshot


@dataclass(frozen=True, slots=True)
class Transaction:
    source: TxSource
    changes: tuple[Change, ...]
    chunk: Chunk | None = None


@dataclass(frozen=True, slots=True)
class Heartbeat:
    """The source has published every transaction with an LSN ≤ ``lsn``; the last was
    ``tx_seq``."""

    region: str
    epoch: int
    stream_id: str
    tx_seq: int
    lsn: int
    at_ms: int


@dataclass(frozen=True, slots=True)
class Resume:
    """A source process started streaming from its confirmed position (``lsn``, ``tx_seq``).
    ``new_stream``: the slot was just created; a snapshot (``snapshot_id``) follows."""

    region: str
    epoch: int
    stream_id: str
    tx_seq: int
    lsn: int
    at_ms: int
    new_stream: bool
    snapshot_id: str | None


class Verdict(StrEnum):
    APPLY = "apply"
    DUPLICATE = "duplicate"
    HOLD = "hold"  # behind an open gap: not applied, not skipped


class GapReason(StrEnum):
    SEQUENCE_JUMP = "sequence_jump"
    SEQUENCE_REGRESSION = "sequence_regression"
    CONFIRMED_MISSING = "confirmed_missing"
    STREAM_CHANGED = "stream_changed"
    SLOT_RECREATED = "slot_recreated"
    JOINED_MID_STREAM = "joined_mid_stream"


@dataclass(frozen=True, slots=True)
class Gap:
    reason: GapReason
    after_seq: int  # the last transaction applied before the gap
    seen_seq: int  # the transaction (or position) that revealed it
    detected_ms: int
    accepted: bool = False  # an operator accepted it and asked for a re-sync

    def sentence(self, source: str) -> str:
        what = {
            GapReason.SEQUENCE_JUMP: f"transactions {self.after_seq + 1}..{self.seen_seq - 1} "
            "never arrived",
            GapReason.SEQUENCE_REGRESSION: f"transaction {self.seen_seq} came after "
            f"{self.after_seq} without a resume marker",
            GapReason.CONFIRMED_MISSING: f"the source confirmed up to transaction "
            f"{self.seen_seq} but only {self.after_seq} arrived",
            GapReason.STREAM_CHANGED: "records of another stream arrived",
            GapReason.SLOT_RECREATED: "the source's replication slot was recreated",
            GapReason.JOINED_MID_STREAM: "the topic does not start at the stream's beginning",
        }[self.reason]
        return f"gap in the changes of {source}: {what}"


@dataclass(frozen=True, slots=True)
class SinkCursor:
    """What a sink has applied from one source region (stored with the data)."""

    stream_id: str | None = None
    tx_seq: int = 0
    lsn: int = 0
    rebase: bool = False
    gap: Gap | None = None
    resync: str | None = None  # the snapshot id a re-sync waits for

    @property
    def holding(self) -> bool:
        return self.gap is not None and not self.gap.accepted

    # -- records -------------------------------------------------------------------------
    def admit(self, tx: TxSource, now_ms: int) -> tuple[Verdict, SinkCursor]:
        """Apply, skip or hold ``tx``; the cursor to store if it is applied (or skipped)."""
        if self.holding:
            return Verdict.HOLD, self
        if self.rebase:
            # An accepted gap: whatever comes next is the new base (even of another stream).
            applied = replace(
                self, stream_id=tx.stream_id, tx_seq=tx.tx_seq, lsn=tx.lsn, rebase=False
            )
            return Verdict.APPLY, applied
        if self.stream_id is None:
            return Verdict.HOLD, self._gap(GapReason.JOINED_MID_STREAM, tx.tx_seq, now_ms)
        if tx.stream_id != self.stream_id:
            return Verdict.HOLD, self._gap(GapReason.STREAM_CHANGED, tx.tx_seq, now_ms)
        if tx.lsn <= self.lsn:
            # Only a restarted source re-sends what was applied; its replay may number
            # transactions differently (snapshot chunks are not replayed alike), so the
            # cursor follows the replay's numbering from here on.
            return Verdict.DUPLICATE, replace(self, tx_seq=tx.tx_seq)
        if tx.tx_seq == self.tx_seq + 1:
            return Verdict.APPLY, replace(self, tx_seq=tx.tx_seq, lsn=tx.lsn)
        reason = (
            GapReason.SEQUENCE_JUMP if tx.tx_seq > self.tx_seq else GapReason.SEQUENCE_REGRESSION
        )
        return Verdict.HOLD, self._gap(reason, tx.tx_seq, now_ms)

    def resumed(self, marker: Resume, now_ms: int) -> SinkCursor:
        if self.holding:
            return self
        if marker.new_stream:
            adopted = replace(
                self,
                stream_id=marker.stream_id,
                tx_seq=marker.tx_seq,
                lsn=marker.lsn,
                rebase=False,
                resync=marker.snapshot_id,
            )
            if self.stream_id is None:
                return adopted  # the stream's beginning: nothing can be missing
            # Changes between the old slot and the new one may be lost; the new stream's
            # snapshot re-syncs every table, so the gap is accepted at once and heals then.
            gap = Gap(GapReason.SLOT_RECREATED, self.tx_seq, marker.tx_seq, now_ms, True)
            return replace(adopted, gap=gap)
        if self.stream_id is None:
            return self._gap(GapReason.JOINED_MID_STREAM, marker.tx_seq, now_ms)
        if marker.stream_id != self.stream_id:
            return self._gap(GapReason.STREAM_CHANGED, marker.tx_seq, now_ms)
        if self.tx_seq >= marker.tx_seq:
            # Everything the source confirmed is here; it replays what follows, numbered
            # from its confirmed transaction on.
            return replace(self, tx_seq=marker.tx_seq, lsn=max(self.lsn, marker.lsn))
        return self._gap(GapReason.CONFIRMED_MISSING, marker.tx_seq, now_ms)

    def heartbeat(self, beat: Heartbeat, now_ms: int) -> SinkCursor:
        if self.holding:
            return self
        if not self.rebase and (self.stream_id is None or beat.stream_id != self.stream_id):
            return self
        if self.rebase:
            # An accepted gap: the beat's position is the new base.
            return replace(
                self, stream_id=beat.stream_id, tx_seq=beat.tx_seq, lsn=beat.lsn, rebase=False
            )
        if beat.lsn < self.lsn:
            # A restarted source that has not re-published up to what is applied here yet.
            return self
        if beat.tx_seq > self.tx_seq:
            return self._gap(GapReason.CONFIRMED_MISSING, beat.tx_seq, now_ms)
        return replace(self, lsn=max(self.lsn, beat.lsn))

    # -- operators and re-syncs ----------------------------------------------------------
    def accept_gap(self, snapshot_id: str) -> SinkCursor:
        """An operator accepted the open gap and asked the source for snapshot
        ``snapshot_id``: apply resumes at the next transaction, the gap stays reported until
        that snapshot's last chunk is applied."""
        if self.gap is None:
            return self
        return replace(self, gap=replace(self.gap, accepted=True), rebase=True, resync=snapshot_id)

    def chunk_applied(self, chunk: Chunk) -> SinkCursor:
        if chunk.last and chunk.snapshot_id == self.resync:
            return replace(
                self, resync=None, gap=None if self.gap and self.gap.accepted else self.gap
            )
        return self

    def _gap(self, reason: GapReason, seen_seq: int, now_ms: int) -> SinkCursor:
        return replace(self, gap=Gap(reason, self.tx_seq, seen_seq, now_ms))
