"""What clients saw while faults were injected, and the checker over it (a pure function).

A fault-history test records, on a private harness:

- every chat request its writers sent to either region's runtime (``Write``): region, send and
  answer times, status, and for an acknowledgement (200) the epoch and turn the region
  answered with; each request carries a unique token in its message;
- every turn both region databases hold at the end (``StoredTurn``): the region that wrote it
  (the row's own ``region`` column, which CDC copies unchanged), its epoch and time;
- every promotion the control plane stored (``Promotion``): region, epoch, when;
- every failover or switchover the schedule asked for (``Transition``): kind, source, target,
  the source's epoch before, how it ended, who was primary right after and which tokens that
  region's database held, and the loss figures of its report.

``check`` turns the history into violations. "At no instant did two regions accept writes"
is made precise as three rules, each checkable from the record alone:

1. ``one_writer_per_epoch`` — every epoch has at most one writer: the acknowledgements and the
   stored user turns at epoch ``e`` name one region.
2. ``stale_write_after_promotion`` — once a region Y was promoted at epoch e', no other region
   X accepts a write at an older epoch e < e': no 200 from X at e whose request was *sent*
   after Y's promotion was stored, no user turn X stored at e *created* after it, and no 200
   from X at e sent after the client had received a 200 from Y at e' (the client saw the
   order). Requests whose interval overlaps the promotion are not counted: nothing proves
   which side of it they fell.
3. Losses. ``planned_loss``: after a planned switchover (switched or rolled back), the region
   primary afterwards holds every turn the source acknowledged at its epoch before.
   ``unreported_loss``: after an unplanned failover, whatever the source acknowledged at its
   epoch and the new primary lacks is accounted for by the report, which measured the loss at
   the fence: no lost write was sent after ``fenced_at``; when the report counts
   ``unreplicated_writes`` (stored turn rows, two per exchange, so the comparison is
   generous) the count is at least the number lost; otherwise its ``rpo_seconds`` (an upper
   bound of the oldest unapplied change's age, from CDC positions) is at least the age at the
   fence of the oldest lost write (``RPO_SLACK_SECONDS`` allowed for the source's publishing
   delay). A loss with neither figure known is unreported.
"""

from __future__ import annotations

import re
import threading
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

# The token a writer puts in each message: schedule, writer, sequence number.
TOKEN = re.compile(r"\[(s\d+-w\d+-\d+)\]")
# A violation rule reports at most this many examples (a split brain yields hundreds).
EXAMPLES = 3
# How much older than the report's RPO a lost write may look: the source publishes a
# committed change a little after the client got its answer.
RPO_SLACK_SECONDS = 1.0


def token_in(text: str) -> str | None:
    found = TOKEN.search(text)
    return found[1] if found else None


@dataclass(frozen=True, slots=True)
class Write:
    """One chat request and what came back. Times are wall-clock seconds (``time.time()``),
    the clock the control plane and PostgreSQL stamp with on the same machine."""

    writer: int
    region: str
    token: str
    sent_at: float
    answered_at: float
    status: int  # HTTP status; 0 when nothing came back (refused, reset, timed out)
    code: str | None = None
    session_id: str | None = None
    epoch: int | None = None
    turn: int | None = None

    @property
    def acked(self) -> bool:
        return self.status == 200 and self.epoch is not None


@dataclass(frozen=True, slots=True)
class StoredTurn:
    """A user turn found in ``held_by``'s database, written by ``region`` at ``epoch``."""

    held_by: str
    region: str
    epoch: int
    created_at: float
    token: str


@dataclass(frozen=True, slots=True)
class Promotion:
    region: str
    epoch: int
    at: float  # when the control plane stored the promotion (the step's end)


@dataclass(frozen=True, slots=True)
class Transition:
    """A failover (``planned`` False) or switchover the schedule asked for, as it ended."""

    name: str
    planned: bool
    source: str
    target: str
    source_epoch: int  # the epoch the source's acknowledged writes carried before
    state: str  # succeeded | aborted | failed | running | rejected
    primary_after: str | None  # the region recorded primary right after
    held_after: frozenset[str] = frozenset()  # tokens in primary_after's database right after
    unreplicated_writes: int | None = None  # the report's figures (unplanned)
    rpo_seconds: float | None = None
    fenced_at: float | None = None  # when the fence the report measured at was stored


@dataclass(frozen=True, slots=True)
class History:
    writes: tuple[Write, ...]
    stored: tuple[StoredTurn, ...] = ()
    promotions: tuple[Promotion, ...] = ()
    transitions: tuple[Transition, ...] = ()


@dataclass(frozen=True, slots=True)
class Violation:
    rule: str
    detail: str


@dataclass
class Recorder:
    """Thread-safe append-only list of writes (one per request, from every writer thread)."""

    _writes: list[Write] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, write: Write) -> None:
        with self._lock:
            self._writes.append(write)

    def writes(self) -> tuple[Write, ...]:
        with self._lock:
            return tuple(self._writes)


def check(history: History) -> list[Violation]:
    """Every violation of the rules in the module docstring; empty when the history is safe."""
    return [
        *_one_writer_per_epoch(history),
        *_stale_after_promotion(history.promotions, history.writes, history.stored),
        *_stale_after_newer_ack(history.writes),
        *_losses(history.transitions, history.writes),
    ]


def _one_writer_per_epoch(history: History) -> list[Violation]:
    writers: dict[int, set[str]] = defaultdict(set)
    for w in history.writes:
        if w.acked and w.epoch is not None:
            writers[w.epoch].add(w.region)
    for t in history.stored:
        writers[t.epoch].add(t.region)
    return [
        Violation(
            "one_writer_per_epoch",
            f"epoch {epoch} was written by {', '.join(sorted(regions))}",
        )
        for epoch, regions in sorted(writers.items())
        if len(regions) > 1
    ]


def _stale_after_promotion(
    promotions: Sequence[Promotion], writes: Iterable[Write], stored: Iterable[StoredTurn]
) -> list[Violation]:
    found: list[Violation] = []
    for p in sorted(promotions, key=lambda p: p.at):
        acked = [
            w
            for w in writes
            if w.acked and w.region != p.region and (w.epoch or 0) < p.epoch and w.sent_at > p.at
        ]
        kept = [
            t for t in stored if t.region != p.region and t.epoch < p.epoch and t.created_at > p.at
        ]
        if acked:
            found.append(
                Violation(
                    "stale_write_after_promotion",
                    f"{len(acked)} writes acknowledged at an epoch older than {p.epoch} after "
                    f"{p.region} was promoted at {p.at:.3f}, e.g. "
                    + "; ".join(_describe(w) for w in acked[:EXAMPLES]),
                )
            )
        if kept:
            found.append(
                Violation(
                    "stale_write_after_promotion",
                    f"{len(kept)} turns stored at an epoch older than {p.epoch} after "
                    f"{p.region} was promoted at {p.at:.3f}, e.g. "
                    + "; ".join(
                        f"{t.token} by {t.region} at epoch {t.epoch}, {t.created_at:.3f}"
                        for t in kept[:EXAMPLES]
                    ),
                )
            )
    return found


def _stale_after_newer_ack(writes: Sequence[Write]) -> list[Violation]:
    # The first answer each (region, epoch) gave: any older-epoch write another region
    # accepts after a client held that answer is out of order.
    first: dict[tuple[str, int], Write] = {}
    for w in writes:
        if w.acked and w.epoch is not None:
            key = (w.region, w.epoch)
            if key not in first or w.answered_at < first[key].answered_at:
                first[key] = w
    found: list[Violation] = []
    for (region, epoch), newer in sorted(first.items(), key=lambda kv: kv[1].answered_at):
        late = [
            w
            for w in writes
            if w.acked
            and w.region != region
            and (w.epoch or 0) < epoch
            and w.sent_at > newer.answered_at
        ]
        if late:
            found.append(
                Violation(
                    "stale_write_after_promotion",
                    f"{len(late)} writes acknowledged at an epoch older than {epoch} after a "
                    f"client held {region}'s answer at epoch {epoch} ({_describe(newer)}), e.g. "
                    + "; ".join(_describe(w) for w in late[:EXAMPLES]),
                )
            )
    return found


def _losses(transitions: Sequence[Transition], writes: Sequence[Write]) -> list[Violation]:
    found: list[Violation] = []
    for t in transitions:
        if t.primary_after is None or t.state in ("running", "rejected"):
            continue  # nothing settled to compare with
        acked = [
            w for w in writes if w.acked and w.region == t.source and w.epoch == t.source_epoch
        ]
        missing = [w for w in acked if w.token not in t.held_after]
        if not missing:
            continue
        examples = ", ".join(w.token for w in missing[:EXAMPLES])
        if t.planned:
            found.append(
                Violation(
                    "planned_loss",
                    f"{t.name}: {len(missing)} of {len(acked)} turns {t.source} acknowledged "
                    f"at epoch {t.source_epoch} are not in {t.primary_after} after the "
                    f"switchover ({t.state}), e.g. {examples}",
                )
            )
            continue
        why = _unaccounted(t, missing)
        if why is not None:
            found.append(
                Violation(
                    "unreported_loss",
                    f"{t.name}: {len(missing)} turns {t.source} acknowledged at epoch "
                    f"{t.source_epoch} are not in {t.primary_after} and {why} "
                    f"(unreplicated_writes {t.unreplicated_writes}, rpo_seconds "
                    f"{t.rpo_seconds}), e.g. {examples}",
                )
            )
    return found


def _unaccounted(t: Transition, missing: Sequence[Write]) -> str | None:
    """Why the report of ``t`` does not account for the ``missing`` writes; None if it does."""
    if t.fenced_at is not None:
        late = [w for w in missing if w.sent_at > t.fenced_at]
        if late:
            return f"{len(late)} of them were sent after the fence the report measured at"
    if t.unreplicated_writes is not None:
        if t.unreplicated_writes >= len(missing):
            return None
        return "the report counts fewer unreplicated writes"
    if t.rpo_seconds is None or t.fenced_at is None:
        return "the report's loss figures are unknown"
    age = t.fenced_at - min(w.answered_at for w in missing)
    if age > t.rpo_seconds + RPO_SLACK_SECONDS:
        return f"the oldest was at least {age:.2f} s old at the fence, more than the report's RPO"
    return None


def _describe(w: Write) -> str:
    return (
        f"{w.token} {w.region} epoch {w.epoch} turn {w.turn} "
        f"sent {w.sent_at:.3f} answered {w.answered_at:.3f}"
    )
