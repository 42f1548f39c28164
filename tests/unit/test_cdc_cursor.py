"""The sink's rules for admitting a source's transactions (``SinkCursor``): apply each change
exactly once, and never skip a lost one silently."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from switchyard.domain.cdc import (
    Chunk,
    Gap,
    GapReason,
    Heartbeat,
    Resume,
    SinkCursor,
    TxSource,
    Verdict,
)

STREAM = "stream-1"
NOW = 1_700_000_000_000


def tx(seq: int, lsn: int, *, stream: str = STREAM) -> TxSource:
    return TxSource("a", 1, stream, seq, lsn, commit_ms=NOW, txid=900 + seq)


def beat(seq: int, lsn: int, *, stream: str = STREAM) -> Heartbeat:
    return Heartbeat("a", 1, stream, seq, lsn, at_ms=NOW)


def resume(
    seq: int,
    lsn: int,
    *,
    stream: str = STREAM,
    new_stream: bool = False,
    snapshot_id: str | None = None,
) -> Resume:
    return Resume("a", 1, stream, seq, lsn, NOW, new_stream, snapshot_id)


def chunk(snapshot_id: str, *, last: bool) -> Chunk:
    return Chunk(snapshot_id, "dialog_turns", None, None, (), last)


def at(seq: int, lsn: int, *, rebase: bool = False) -> SinkCursor:
    """A cursor that has applied ``STREAM`` up to transaction ``seq`` at ``lsn``."""
    return SinkCursor(stream_id=STREAM, tx_seq=seq, lsn=lsn, rebase=rebase)


def open_gap(cursor: SinkCursor, reason: GapReason = GapReason.SEQUENCE_JUMP) -> SinkCursor:
    return SinkCursor(
        cursor.stream_id,
        cursor.tx_seq,
        cursor.lsn,
        gap=Gap(reason, cursor.tx_seq, cursor.tx_seq + 3, NOW - 5),
    )


# -- admit: duplicates, the next transaction, gaps ------------------------------------------


@pytest.mark.parametrize(
    "record",
    [
        pytest.param(tx(3, 300), id="an-earlier-transaction"),
        pytest.param(tx(5, 500), id="the-last-applied-transaction"),
        pytest.param(tx(6, 500), id="decided-by-lsn-not-by-number"),
        pytest.param(tx(9, 450), id="a-renumbered-replay"),
    ],
)
def test_a_transaction_at_or_below_the_applied_lsn_is_a_duplicate(record: TxSource) -> None:
    # Skipped, and the cursor follows the replay's numbering (only a restarted source
    # re-sends, and it may renumber what it replays).
    cursor = at(5, 500)
    assert cursor.admit(record, NOW) == (Verdict.DUPLICATE, at(record.tx_seq, 500))


def test_the_next_transaction_is_applied_and_advances_the_cursor() -> None:
    verdict, cursor = at(5, 500).admit(tx(6, 600), NOW)
    assert verdict is Verdict.APPLY
    assert cursor == at(6, 600)
    assert cursor.admit(tx(7, 650), NOW) == (Verdict.APPLY, at(7, 650))


@pytest.mark.parametrize(
    ("record", "reason"),
    [
        pytest.param(tx(8, 600), GapReason.SEQUENCE_JUMP, id="jump"),
        pytest.param(tx(5, 600), GapReason.SEQUENCE_REGRESSION, id="same-number-new-lsn"),
        pytest.param(tx(2, 600), GapReason.SEQUENCE_REGRESSION, id="regression"),
        pytest.param(tx(6, 600, stream="stream-2"), GapReason.STREAM_CHANGED, id="other-stream"),
        pytest.param(tx(6, 400, stream="stream-2"), GapReason.STREAM_CHANGED, id="other-low-lsn"),
    ],
)
def test_a_transaction_that_does_not_follow_is_held_behind_a_gap(
    record: TxSource, reason: GapReason
) -> None:
    verdict, cursor = at(5, 500).admit(record, NOW)
    assert verdict is Verdict.HOLD
    assert cursor.gap == Gap(reason, after_seq=5, seen_seq=record.tx_seq, detected_ms=NOW)
    assert cursor.holding
    # Nothing of the held transaction is taken as applied.
    assert (cursor.stream_id, cursor.tx_seq, cursor.lsn) == (STREAM, 5, 500)


def test_a_sink_that_never_saw_the_stream_start_holds_even_transaction_one() -> None:
    verdict, cursor = SinkCursor().admit(tx(1, 100), NOW)
    assert verdict is Verdict.HOLD
    assert cursor.gap == Gap(GapReason.JOINED_MID_STREAM, 0, 1, NOW)


@pytest.mark.parametrize(
    "record",
    [tx(6, 600), tx(9, 900), tx(3, 300), tx(6, 600, stream="stream-2")],
    ids=["next", "jump", "duplicate", "other-stream"],
)
def test_nothing_is_applied_or_skipped_behind_an_open_gap(record: TxSource) -> None:
    cursor = open_gap(at(5, 500))
    assert cursor.admit(record, NOW + 1000) == (Verdict.HOLD, cursor)


def test_after_a_rebase_the_next_new_transaction_is_applied_whatever_its_number() -> None:
    verdict, cursor = at(5, 500, rebase=True).admit(tx(4, 600), NOW)
    assert verdict is Verdict.APPLY
    assert cursor == at(4, 600)
    # From there on the source's (new) numbering is checked again.
    assert cursor.admit(tx(5, 700), NOW)[0] is Verdict.APPLY
    verdict, held = cursor.admit(tx(6, 700), NOW)
    assert verdict is Verdict.HOLD
    assert held.gap is not None
    assert held.gap.reason is GapReason.SEQUENCE_JUMP


@pytest.mark.parametrize(
    ("reason", "after_seq", "seen_seq", "words"),
    [
        (GapReason.SEQUENCE_JUMP, 5, 8, "transactions 6..7 never arrived"),
        (GapReason.SEQUENCE_REGRESSION, 5, 2, "transaction 2 came after 5 without a resume"),
        (GapReason.CONFIRMED_MISSING, 5, 9, "confirmed up to transaction 9 but only 5 arrived"),
        (GapReason.STREAM_CHANGED, 5, 1, "records of another stream arrived"),
        (GapReason.SLOT_RECREATED, 5, 5, "replication slot was recreated"),
        (GapReason.JOINED_MID_STREAM, 0, 7, "does not start at the stream's beginning"),
    ],
)
def test_a_gap_explains_itself_to_the_operator(
    reason: GapReason, after_seq: int, seen_seq: int, words: str
) -> None:
    sentence = Gap(reason, after_seq, seen_seq, NOW).sentence("eu-west")
    assert sentence.startswith("gap in the changes of eu-west: ")
    assert words in sentence


# -- resume markers from a restarted source -------------------------------------------------


def test_a_restart_behind_what_the_sink_holds_replays_duplicates_then_rebases() -> None:
    # Applied 1..5, where 4@400 was a snapshot chunk. The source had confirmed only 3@300:
    # it replays 500 as 4 (chunks are not replayed) and goes on with 5@600.
    cursor = at(5, 500).resumed(resume(3, 300), NOW)
    assert cursor.gap is None
    verdict, cursor = cursor.admit(tx(4, 500), NOW)
    assert verdict is Verdict.DUPLICATE
    verdict, cursor = cursor.admit(tx(5, 600), NOW)
    assert verdict is Verdict.APPLY
    assert (cursor.tx_seq, cursor.lsn, cursor.gap) == (5, 600, None)
    # From there on the source's new numbering is checked.
    verdict, cursor = cursor.admit(tx(7, 700), NOW)
    assert verdict is Verdict.HOLD
    assert cursor.gap == Gap(GapReason.SEQUENCE_JUMP, 5, 7, NOW)


def test_a_restart_ahead_of_what_the_sink_holds_is_a_gap() -> None:
    cursor = at(2, 200).resumed(resume(3, 300), NOW)
    assert cursor.gap == Gap(GapReason.CONFIRMED_MISSING, 2, 3, NOW)
    assert cursor.holding
    assert cursor.admit(tx(4, 400), NOW) == (Verdict.HOLD, cursor)


def test_a_resume_marker_of_another_stream_is_a_gap() -> None:
    cursor = at(5, 500).resumed(resume(5, 500, stream="stream-2"), NOW)
    assert cursor.gap == Gap(GapReason.STREAM_CHANGED, 5, 5, NOW)


def test_a_resume_marker_that_is_not_a_streams_beginning_cannot_start_a_cursor() -> None:
    cursor = SinkCursor().resumed(resume(40, 4000), NOW)
    assert cursor.gap == Gap(GapReason.JOINED_MID_STREAM, 0, 40, NOW)
    assert cursor.stream_id is None


def test_a_new_streams_marker_starts_a_fresh_cursor_without_a_gap() -> None:
    cursor = SinkCursor().resumed(resume(0, 100, new_stream=True, snapshot_id="snap-0"), NOW)
    assert cursor == SinkCursor(stream_id=STREAM, tx_seq=0, lsn=100, resync="snap-0")
    assert cursor.admit(tx(1, 200), NOW)[0] is Verdict.APPLY


def test_a_recreated_slot_is_an_accepted_gap_that_the_new_streams_snapshot_heals() -> None:
    marker = resume(7, 9000, stream="stream-2", new_stream=True, snapshot_id="snap-2")
    cursor = at(5, 500).resumed(marker, NOW)
    assert cursor.gap == Gap(GapReason.SLOT_RECREATED, 5, 7, NOW, accepted=True)
    assert not cursor.holding
    assert (cursor.stream_id, cursor.tx_seq, cursor.lsn) == ("stream-2", 7, 9000)
    assert cursor.resync == "snap-2"
    # The new stream applies from its first transaction; the gap stays reported ...
    verdict, cursor = cursor.admit(tx(8, 9100, stream="stream-2"), NOW)
    assert verdict is Verdict.APPLY
    cursor = cursor.chunk_applied(chunk("snap-2", last=False))
    assert cursor.gap is not None
    # ... until the last chunk of that stream's snapshot is applied.
    cursor = cursor.chunk_applied(chunk("snap-2", last=True))
    assert cursor.gap is None
    assert cursor.resync is None


def test_an_open_gap_ignores_resume_markers() -> None:
    cursor = open_gap(at(5, 500))
    assert cursor.resumed(resume(5, 500), NOW) == cursor
    assert cursor.resumed(resume(0, 9000, stream="s-2", new_stream=True), NOW) == cursor


# -- heartbeats ------------------------------------------------------------------------------


def test_a_heartbeat_with_nothing_new_moves_the_lsn_on() -> None:
    cursor = at(5, 500).heartbeat(beat(5, 560), NOW)
    assert cursor == at(5, 560)
    assert cursor.admit(tx(6, 600), NOW)[0] is Verdict.APPLY


def test_a_heartbeat_older_than_the_cursor_changes_nothing() -> None:
    assert at(5, 500).heartbeat(beat(4, 400), NOW) == at(5, 500)


def test_a_heartbeat_past_the_last_applied_transaction_reveals_a_missing_tail() -> None:
    cursor = at(5, 500).heartbeat(beat(7, 700), NOW)
    assert cursor.gap == Gap(GapReason.CONFIRMED_MISSING, 5, 7, NOW)
    assert cursor.holding


def test_a_heartbeat_behind_the_applied_lsn_is_ignored() -> None:
    # A restarted source still re-publishing what this sink has: its numbering (here even
    # higher than the cursor's) means nothing yet.
    cursor = at(5, 500)
    assert cursor.heartbeat(beat(4, 400), NOW) == cursor
    assert cursor.heartbeat(beat(9, 499), NOW) == cursor


def test_after_an_accepted_gap_a_heartbeat_is_the_new_base() -> None:
    cursor = at(5, 500, rebase=True).heartbeat(beat(4, 500), NOW)
    assert cursor == at(4, 500)
    assert cursor.admit(tx(5, 600), NOW)[0] is Verdict.APPLY
    assert cursor.admit(tx(6, 600), NOW)[0] is Verdict.HOLD


@pytest.mark.parametrize(
    "cursor",
    [SinkCursor(), open_gap(at(5, 500))],
    ids=["fresh-cursor", "open-gap"],
)
def test_heartbeats_do_not_touch_a_cursor_without_a_stream_or_with_an_open_gap(
    cursor: SinkCursor,
) -> None:
    assert cursor.heartbeat(beat(9, 900), NOW) == cursor


def test_a_heartbeat_of_another_stream_is_ignored() -> None:
    assert at(5, 500).heartbeat(beat(9, 900, stream="stream-2"), NOW) == at(5, 500)


# -- operators and re-syncs ------------------------------------------------------------------


def test_accepting_a_gap_resumes_apply_and_keeps_the_gap_reported_until_the_resync() -> None:
    held = open_gap(at(5, 500))
    cursor = held.accept_gap("snap-9")
    assert cursor.gap == Gap(GapReason.SEQUENCE_JUMP, 5, 8, NOW - 5, accepted=True)
    assert not cursor.holding
    assert cursor.resync == "snap-9"
    verdict, cursor = cursor.admit(tx(12, 1200), NOW)
    assert verdict is Verdict.APPLY
    assert cursor.gap is not None
    assert cursor.gap.accepted
    assert cursor.admit(tx(13, 1300), NOW)[0] is Verdict.APPLY


def test_accepting_when_there_is_no_gap_changes_nothing() -> None:
    assert at(5, 500).accept_gap("snap-9") == at(5, 500)


@pytest.mark.parametrize(
    "applied",
    [chunk("snap-9", last=False), chunk("snap-other", last=True)],
    ids=["not-the-last-chunk", "another-snapshot"],
)
def test_a_gap_stays_until_the_last_chunk_of_its_resync(applied: Chunk) -> None:
    cursor = open_gap(at(5, 500)).accept_gap("snap-9")
    assert cursor.chunk_applied(applied) == cursor


def test_the_last_chunk_of_the_resync_closes_the_accepted_gap() -> None:
    cursor = open_gap(at(5, 500)).accept_gap("snap-9").chunk_applied(chunk("snap-9", last=True))
    assert cursor.gap is None
    assert cursor.resync is None


def test_a_finished_resync_does_not_close_a_gap_nobody_accepted() -> None:
    held = open_gap(at(5, 500))
    cursor = SinkCursor(STREAM, 5, 500, gap=held.gap, resync="snap-9")
    cursor = cursor.chunk_applied(chunk("snap-9", last=True))
    assert cursor.gap == held.gap
    assert cursor.holding
    assert cursor.resync is None


# -- a simulated source: restarts, replays, heartbeats, and broker losses ------------------


@dataclass
class Source:
    """A source region as the cursor sees it: commits get increasing LSNs and consecutive
    tx_seq; a restart publishes a Resume at a confirmed position of the current run and
    replays every transaction after it, numbering on from the confirmed tx_seq. Snapshot
    chunks are not replayed (their numbers shift the replayed ones), as in the real source."""

    records: list[TxSource | Heartbeat | Resume] = field(default_factory=list)
    wal: list[tuple[int, bool]] = field(default_factory=list)  # (lsn, is a chunk)
    replay_from: int = 0  # the next WAL entry this run publishes
    seq: int = 0
    lsn: int = 0
    run: list[tuple[int, int]] = field(default_factory=list)  # confirmable (seq, lsn)

    def __post_init__(self) -> None:
        self.records.append(resume(0, 0, new_stream=True, snapshot_id="initial"))
        self.run = [(0, 0)]

    @property
    def replaying(self) -> bool:
        return any(not is_chunk for _, is_chunk in self.wal[self.replay_from :])

    def commit(self, *, is_chunk: bool = False) -> None:
        """Publish the next transaction: a replayed one while any is left, else a new one."""
        while self.replay_from < len(self.wal) and self.wal[self.replay_from][1]:
            self.replay_from += 1
        if self.replay_from < len(self.wal):
            lsn = self.wal[self.replay_from][0]
        else:
            lsn = (self.wal[-1][0] if self.wal else 0) + 10
            self.wal.append((lsn, is_chunk))
        self.replay_from += 1
        self.seq, self.lsn = self.seq + 1, lsn
        self.run.append((self.seq, lsn))
        self.records.append(tx(self.seq, lsn))

    def beat(self) -> None:
        self.records.append(beat(self.seq, self.lsn))

    def restart(self, confirmed: tuple[int, int]) -> None:
        seq, lsn = confirmed
        self.records.append(resume(seq, lsn))
        self.replay_from = next(
            (i for i, (wal_lsn, _) in enumerate(self.wal) if wal_lsn > lsn), len(self.wal)
        )
        self.seq, self.lsn = seq, lsn
        self.run = [confirmed]

    def finish_replay(self) -> None:
        while self.replaying:
            self.commit()

    def act(self, action: tuple[str, int]) -> None:
        kind, choice = action
        if kind == "commit":
            self.commit()
        elif kind == "chunk":
            self.commit(is_chunk=True)
        elif kind == "beat":
            self.beat()
        else:
            self.restart(self.run[choice % len(self.run)])


@dataclass
class SinkRun:
    applied: list[int]  # LSNs applied, in order
    gap: Gap | None  # the first gap opened (the run stops there)


def sink(records: list[TxSource | Heartbeat | Resume]) -> SinkRun:
    """Feed records to a cursor until it opens a gap."""
    cursor = SinkCursor()
    applied: list[int] = []
    for record in records:
        if isinstance(record, TxSource):
            verdict, cursor = cursor.admit(record, NOW)
            if verdict is Verdict.APPLY:
                applied.append(record.lsn)
        elif isinstance(record, Heartbeat):
            cursor = cursor.heartbeat(record, NOW)
        else:
            cursor = cursor.resumed(record, NOW)
        if cursor.gap is not None:
            return SinkRun(applied, cursor.gap)
    return SinkRun(applied, None)


def actions(*, chunks: bool) -> st.SearchStrategy[list[tuple[str, int]]]:
    kinds = ["commit", "commit", "beat", "restart"] + (["chunk"] if chunks else [])
    return st.lists(st.tuples(st.sampled_from(kinds), st.integers(0, 1000)), max_size=40)


def no_restart(*, chunks: bool) -> st.SearchStrategy[list[tuple[str, int]]]:
    kinds = ["commit", "beat"] + (["chunk"] if chunks else [])
    return st.lists(st.tuples(st.sampled_from(kinds), st.just(0)), max_size=6)


@settings(max_examples=200, deadline=None)
@given(chunks=st.booleans(), script=st.data())
def test_without_losses_every_transaction_is_applied_exactly_once_and_no_gap_opens(
    chunks: bool, script: st.DataObject
) -> None:
    source = Source()
    for action in script.draw(actions(chunks=chunks)):
        source.act(action)
    source.finish_replay()
    source.beat()

    run = sink(source.records)

    assert run.gap is None
    assert Counter(run.applied) == Counter(lsn for lsn, _ in source.wal)
    assert run.applied == sorted(run.applied)


@settings(max_examples=200, deadline=None)
@given(chunks=st.booleans(), script=st.data())
def test_a_lost_transaction_that_the_source_confirmed_opens_a_gap_and_is_never_skipped(
    chunks: bool, script: st.DataObject
) -> None:
    source = Source()
    for action in script.draw(actions(chunks=chunks), label="before"):
        source.act(action)
    source.finish_replay()  # so the lost transaction is a new one, not a re-sent copy
    first_lost = len(source.records)
    source.commit()
    lost_lsn = source.lsn
    for action in script.draw(no_restart(chunks=chunks), label="lost"):
        source.act(action)
    survivors = source.records[:first_lost]
    after = len(source.records)
    for action in script.draw(no_restart(chunks=chunks), label="delivered"):
        source.act(action)
    # The broker acknowledged the lost records, so the source confirms them and restarts
    # from a position at or after the lost transaction: it is never re-sent.
    confirmable = [(seq, lsn) for seq, lsn in source.run if lsn >= lost_lsn]
    source.restart(script.draw(st.sampled_from(confirmable), label="confirmed"))
    for action in script.draw(actions(chunks=chunks), label="after"):
        source.act(action)
    source.finish_replay()
    source.commit()
    source.beat()
    survivors += source.records[after:]

    run = sink(survivors)

    skipped_past = [lsn for lsn in run.applied if lsn > lost_lsn]
    assert not skipped_past, f"applied {skipped_past} past the lost {lost_lsn} without a gap"
    assert run.gap is not None, f"the loss of {lost_lsn} was never reported"


# -- silent skips after a source restart -----------------------------------------------------
# These, and the loss property above, fail against the current SinkCursor: after a resume
# marker it re-bases, accepting the next new transaction whatever its tx_seq (and, from a
# heartbeat or a later marker, whatever position they give), so a transaction the broker
# lost right after a source restart is skipped without a gap.


def test_a_transaction_lost_right_after_a_source_restart_opens_a_gap() -> None:
    # The sink holds exactly what the source confirmed; the source restarts, publishes 4,
    # the broker loses it, and 5 arrives.
    cursor = at(3, 300).resumed(resume(3, 300), NOW)
    verdict, cursor = cursor.admit(tx(5, 500), NOW)
    assert verdict is Verdict.HOLD
    assert cursor.gap is not None


def test_a_heartbeat_after_a_restart_does_not_cover_a_lost_transaction() -> None:
    # As above, and the source's next heartbeat says it published up to 4 at 400.
    cursor = at(3, 300).resumed(resume(3, 300), NOW).heartbeat(beat(4, 400), NOW)
    assert cursor.gap is not None


def test_a_restart_that_confirms_a_lost_transaction_opens_a_gap_after_a_renumbered_replay() -> None:
    # Applied 1@10, 2@20 (a snapshot chunk) and 3@30. The source restarts from 1@10 and
    # replays 30 as 2 (the chunk is not replayed); its next transaction, 3@40, is lost; it
    # restarts again having confirmed 3@40.
    cursor = at(3, 30).resumed(resume(1, 10), NOW)
    assert cursor.admit(tx(2, 30), NOW)[0] is Verdict.DUPLICATE
    cursor = cursor.resumed(resume(3, 40), NOW)
    verdict, cursor = cursor.admit(tx(4, 50), NOW)
    assert verdict is Verdict.HOLD
    assert cursor.gap is not None


# -- accepting a gap of another stream ------------------------------------------------------
# These fail against the current SinkCursor: ``accept_gap`` keeps the cursor's stream (None
# for a sink that joined mid-stream), so the next transaction re-opens the same gap and the
# runbook's `switchyard cdc resync` never lets the standby apply again.


@pytest.mark.parametrize(
    ("cursor", "stream"),
    [
        pytest.param(SinkCursor(), STREAM, id="joined-mid-stream"),
        pytest.param(at(5, 500), "stream-2", id="stream-changed"),
    ],
)
def test_after_an_accepted_gap_of_another_stream_the_next_transaction_applies(
    cursor: SinkCursor, stream: str
) -> None:
    verdict, cursor = cursor.admit(tx(40, 4000, stream=stream), NOW)
    assert verdict is Verdict.HOLD
    cursor = cursor.accept_gap("snap-9")
    verdict, cursor = cursor.admit(tx(41, 4100, stream=stream), NOW)
    assert verdict is Verdict.APPLY
    assert cursor.gap is not None
    assert cursor.gap.accepted
