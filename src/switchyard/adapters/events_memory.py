"""In-memory twin of the event log, for scenario tests and local runs.

Same contract as the Kafka adapter (see ``switchyard.ports.events``); both pass
``tests/contract/test_event_log.py``. One ``InMemoryEventLog`` holds the topics and the
groups' committed offsets; ``topics()``, ``publisher()`` and ``subscriber(group_id)`` hand out
objects implementing the three ports over it. Where it differs from Kafka:

- A key picks its partition by ``crc32(key) % partitions``, as librdkafka's default
  (consistent_random) partitioner does; a None key always goes to partition 0 (librdkafka
  picks one at random).
- A record is appended, and acknowledged, only when its publisher's ``poll`` or ``flush``
  runs; until then no subscriber sees it. Offsets are given at that moment.
- A subscriber is assigned every partition of its topics: members of one group share
  committed offsets but never split partitions between them. ``start`` is asked once, at
  ``subscribe``.
- Topic configs are checked against a short list of known names; none has an effect
  (nothing is compacted or expires; ``truncate`` removes records on demand).
- As with Kafka's idempotent producer, a publisher that wrote to a partition of a topic that
  was then deleted and recreated stops for good when it next writes there: every queued
  record gets ``on_ack(error)`` and ``poll``/``flush``/``publish`` raise ``FatalError``.

Test hooks, each something the contract suite can also make a real broker do:
``set_reachable(False)`` makes every call that needs the server raise ``TransientError``
(like a dead bootstrap address), and ``truncate`` drops a partition's records below an
offset (like ``AdminClient.delete_records``).
"""

from __future__ import annotations

import threading
import time
import zlib
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType

from switchyard.errors import FatalError, TransientError
from switchyard.ports.events import AckCallback, Record, StartOffsets, TopicPartition

_NO_CONFIG: Mapping[str, str] = MappingProxyType({})


def _is_int(value: str) -> bool:
    return value.lstrip("-").isdigit()


# Topic config names Kafka knows (a few), each with a check of its value.
_TOPIC_CONFIG: Mapping[str, Callable[[str], bool]] = {
    "cleanup.policy": lambda v: bool(v) and set(v.split(",")) <= {"delete", "compact"},
    "compression.type": lambda v: (
        v in {"uncompressed", "producer", "gzip", "snappy", "lz4", "zstd"}
    ),
    "delete.retention.ms": _is_int,
    "max.message.bytes": _is_int,
    "message.timestamp.type": lambda v: v in {"CreateTime", "LogAppendTime"},
    "min.compaction.lag.ms": _is_int,
    "min.insync.replicas": _is_int,
    "retention.bytes": _is_int,
    "retention.ms": _is_int,
    "segment.bytes": _is_int,
}


@dataclass
class _Partition:
    """Invariant: ``records[i].offset == base + i``; ``base`` is the earliest offset kept."""

    base: int = 0
    records: list[Record] = field(default_factory=list)

    @property
    def end(self) -> int:
        return self.base + len(self.records)


@dataclass(frozen=True)
class _Queued:
    topic: str
    key: bytes | None
    value: bytes | None
    headers: Mapping[str, bytes]
    timestamp_ms: int
    on_ack: AckCallback | None


class _SequenceError(FatalError):
    """The publisher's record sequence no longer matches the partition's (recreated)."""


class InMemoryEventLog:
    """Topics (name -> partitions -> records) and committed offsets (group -> partition ->
    next offset). One condition variable guards both and wakes waiting subscribers."""

    def __init__(self, *, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._changed = threading.Condition()
        self._topics: dict[str, list[_Partition]] = {}
        # Bumped whenever a topic is created, so a publisher can tell a recreated topic apart.
        self._incarnations: dict[str, int] = {}
        self._committed: dict[str, dict[TopicPartition, int]] = {}
        self._reachable = True

    def __repr__(self) -> str:
        return f"InMemoryEventLog(topics={len(self._topics)})"

    def topics(self) -> InMemoryTopics:
        return InMemoryTopics(self)

    def publisher(self) -> InMemoryPublisher:
        return InMemoryPublisher(self)

    def subscriber(self, group_id: str) -> InMemorySubscriber:
        return InMemorySubscriber(self, group_id)

    # -- test hooks ---------------------------------------------------------------------------

    def set_reachable(self, reachable: bool) -> None:
        """Simulate the broker going away (False) or coming back (True)."""
        with self._changed:
            self._reachable = reachable
            self._changed.notify_all()

    def truncate(self, partition: TopicPartition, before: int) -> None:
        """Drop the records of ``partition`` below offset ``before``, as retention would."""
        with self._changed:
            part = self._partition(partition)
            if not part.base <= before <= part.end:
                raise FatalError(f"{partition}: cannot truncate before {before} (end {part.end})")
            del part.records[: before - part.base]
            part.base = before

    # -- used by the port objects -------------------------------------------------------------

    def _ensure(self, name: str, partitions: int, config: Mapping[str, str]) -> None:
        if partitions < 1:
            raise FatalError(f"topic {name!r}: partitions must be at least 1, not {partitions}")
        for key, value in config.items():
            check = _TOPIC_CONFIG.get(key)
            if check is None:
                raise FatalError(f"topic {name!r}: unknown topic config {key!r}")
            if not check(value):
                raise FatalError(f"topic {name!r}: invalid value for topic config {key!r}")
        with self._changed:
            self._check_reachable()
            if name not in self._topics:
                self._topics[name] = [_Partition() for _ in range(partitions)]
                self._incarnations[name] = self._incarnations.get(name, 0) + 1

    def _exists(self, name: str) -> bool:
        with self._changed:
            self._check_reachable()
            return name in self._topics

    def _delete(self, name: str) -> None:
        with self._changed:
            self._check_reachable()
            self._topics.pop(name, None)
            # As Kafka does: a deleted topic's committed offsets go with it.
            for offsets in self._committed.values():
                for gone in [tp for tp in offsets if tp.topic == name]:
                    del offsets[gone]
            self._changed.notify_all()

    def _require(self, topic: str) -> int:
        """The partition count of ``topic``; FatalError if it does not exist."""
        with self._changed:
            self._check_reachable()
            return len(self._parts(topic))

    def _append(self, queued: _Queued, written: dict[TopicPartition, int]) -> None:
        """Append ``queued``; ``written`` maps the partitions its publisher wrote to onto the
        topic incarnation it wrote them in (checked, then updated)."""
        with self._changed:
            parts = self._parts(queued.topic)
            number = 0 if queued.key is None else zlib.crc32(queued.key) % len(parts)
            tp = TopicPartition(queued.topic, number)
            incarnation = self._incarnations[queued.topic]
            if written.setdefault(tp, incarnation) != incarnation:
                raise _SequenceError(
                    f"publisher stopped: {tp} was recreated after this publisher wrote to it"
                )
            part = parts[number]
            part.records.append(
                Record(
                    topic=queued.topic,
                    partition=number,
                    offset=part.end,
                    key=queued.key,
                    value=queued.value,
                    headers=queued.headers,
                    timestamp_ms=queued.timestamp_ms,
                )
            )
            self._changed.notify_all()

    def _await_reachable(self, timeout: float) -> bool:
        with self._changed:
            return self._changed.wait_for(lambda: self._reachable, timeout)

    def _now_ms(self) -> int:
        return int(self._clock() * 1000)

    def _fetch(
        self,
        positions: dict[TopicPartition, int | None],
        order: Sequence[TopicPartition],
        max_records: int,
        timeout: float,
    ) -> list[Record]:
        """Read up to ``max_records`` from ``positions`` (advancing them), taking partitions in
        ``order``; wait up to ``timeout`` for the first. A position of None, or one outside
        the kept range, reads from the earliest record kept (auto.offset.reset=earliest)."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                self._check_reachable()
                records: list[Record] = []
                for tp in order:
                    part = self._partition(tp)
                    position = positions[tp]
                    if position is None or not part.base <= position <= part.end:
                        position = part.base
                    taken = part.records[position - part.base :][: max_records - len(records)]
                    records.extend(taken)
                    positions[tp] = position + len(taken)
                remaining = deadline - time.monotonic()
                if records or remaining <= 0:
                    return records
                self._changed.wait(remaining)

    def _commit(self, group_id: str, offsets: Mapping[TopicPartition, int]) -> None:
        with self._changed:
            self._check_reachable()
            for tp, offset in offsets.items():
                self._partition(tp)
                if offset < 0:
                    raise FatalError(f"{tp}: cannot commit offset {offset}")
            self._committed.setdefault(group_id, {}).update(offsets)

    def _committed_offset(self, group_id: str, partition: TopicPartition) -> int | None:
        with self._changed:
            self._check_reachable()
            return self._committed.get(group_id, {}).get(partition)

    def _high_watermark(self, partition: TopicPartition) -> int:
        with self._changed:
            self._check_reachable()
            return self._partition(partition).end

    def _check_reachable(self) -> None:
        if not self._reachable:
            raise TransientError("the event log is unreachable")

    def _parts(self, topic: str) -> list[_Partition]:
        parts = self._topics.get(topic)
        if parts is None:
            raise FatalError(f"topic {topic!r} does not exist (topics are never auto-created)")
        return parts

    def _partition(self, tp: TopicPartition) -> _Partition:
        parts = self._parts(tp.topic)
        if not 0 <= tp.partition < len(parts):
            raise FatalError(f"topic {tp.topic!r} has no partition {tp.partition}")
        return parts[tp.partition]


class InMemoryTopics:
    def __init__(self, log: InMemoryEventLog) -> None:
        self._log = log

    def __repr__(self) -> str:
        return f"InMemoryTopics({self._log!r})"

    def ensure(
        self, name: str, *, partitions: int = 1, config: Mapping[str, str] = _NO_CONFIG
    ) -> None:
        self._log._ensure(name, partitions, config)

    def exists(self, name: str) -> bool:
        return self._log._exists(name)

    def delete(self, name: str) -> None:
        """Delete ``name`` and its groups' committed offsets; a missing topic is no error."""
        self._log._delete(name)


class InMemoryPublisher:
    """Queues records until ``poll``/``flush``, which append them and run ``on_ack`` in
    publish order. While the log is unreachable nothing is delivered: ``flush`` waits up to
    its timeout for it to come back. ``close`` gives every queued record ``on_ack(error)``."""

    def __init__(self, log: InMemoryEventLog) -> None:
        self._log = log
        self._queue: deque[_Queued] = deque()
        self._known_topics: set[str] = set()
        self._written: dict[TopicPartition, int] = {}
        self._stopped: FatalError | None = None
        self._closed = False

    def __repr__(self) -> str:
        return f"InMemoryPublisher(queued={len(self._queue)})"

    def publish(
        self,
        topic: str,
        key: bytes | None,
        value: bytes | None,
        *,
        headers: Sequence[tuple[str, bytes]] = (),
        on_ack: AckCallback | None = None,
    ) -> None:
        self._check_open()
        self._raise_if_stopped()
        if topic not in self._known_topics:
            # Like the Kafka adapter: the first record to a topic checks that it exists.
            self._log._require(topic)
            self._known_topics.add(topic)
        self._queue.append(_Queued(topic, key, value, dict(headers), self._log._now_ms(), on_ack))

    def poll(self, timeout: float = 0.0) -> None:
        self._check_open()
        self._deliver(timeout)
        self._raise_if_stopped()

    def flush(self, timeout: float) -> int:
        self._check_open()
        self._deliver(timeout)
        self._raise_if_stopped()
        return len(self._queue)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        while self._queue:
            queued = self._queue.popleft()
            if queued.on_ack is not None:
                queued.on_ack(FatalError(f"publisher closed before {queued.topic!r} acked"))

    def _deliver(self, timeout: float) -> None:
        if not self._queue or not self._log._await_reachable(timeout):
            return
        while self._queue:
            # Taken off first, so an on_ack that raises is not run again by the next poll.
            queued = self._queue.popleft()
            error = self._stopped
            if error is None:
                try:
                    self._log._append(queued, self._written)
                except _SequenceError as exc:
                    error = self._stopped = exc
                except FatalError as exc:  # the topic was deleted meanwhile
                    error = exc
            if queued.on_ack is not None:
                queued.on_ack(error)

    def _check_open(self) -> None:
        if self._closed:
            raise FatalError(f"{self!r} is closed")

    def _raise_if_stopped(self) -> None:
        if self._stopped is not None:
            raise FatalError(str(self._stopped))


class InMemorySubscriber:
    def __init__(self, log: InMemoryEventLog, group_id: str) -> None:
        self._log = log
        self._group_id = group_id
        self._positions: dict[TopicPartition, int | None] = {}
        self._turn = 0
        self._closed = False

    def __repr__(self) -> str:
        return f"InMemorySubscriber(group_id={self._group_id!r})"

    def subscribe(self, topics: Sequence[str], start: StartOffsets) -> None:
        self._check_open()
        assigned = [
            TopicPartition(topic, number)
            for topic in topics
            for number in range(self._log._require(topic))
        ]
        # Asked outside the log's lock: ``start`` may well call ``committed``.
        offsets = start(assigned)
        self._positions = {tp: offsets.get(tp) for tp in assigned}

    def fetch(self, max_records: int, timeout: float) -> list[Record]:
        self._check_open()
        order = sorted(self._positions)
        if order:
            # Start at a different partition each time, so a busy one cannot starve the rest.
            self._turn = (self._turn + 1) % len(order)
            order = order[self._turn :] + order[: self._turn]
        return self._log._fetch(self._positions, order, max_records, timeout)

    def commit(self, offsets: Mapping[TopicPartition, int]) -> None:
        self._check_open()
        self._log._commit(self._group_id, offsets)

    def committed(self, partition: TopicPartition) -> int | None:
        self._check_open()
        return self._log._committed_offset(self._group_id, partition)

    def high_watermark(self, partition: TopicPartition) -> int:
        self._check_open()
        return self._log._high_watermark(partition)

    def close(self) -> None:
        self._closed = True

    def _check_open(self) -> None:
        if self._closed:
            raise FatalError(f"{self!r} is closed")
