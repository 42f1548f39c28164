"""The event log CDC travels through: topics of keyed records (Kafka in production).

Adapters: ``adapters/events_kafka.py`` (confluent-kafka; the harness broker or any real
Kafka) and ``adapters/events_memory.py`` (twin). Both pass ``tests/contract/test_event_log.py``.

Contract:
- ``Topics.ensure`` creates a topic if missing (idempotent); topics are never auto-created, so
  publishing to or reading from a missing topic fails instead of inventing one.
- ``Publisher.publish`` queues a record; ``on_ack(None)`` runs once the log acknowledged it
  (durably, acks=all), ``on_ack(error)`` if it never will. Acknowledgements arrive from
  ``poll``/``flush`` in publish order, and records of one partition keep publish order. The
  publisher is idempotent: a retry inside the client never duplicates a record.
- ``Subscriber`` reads each partition in offset order from where ``subscribe``'s ``start``
  said (None: the earliest record still kept), commits offsets only when told, and reports
  high watermarks, so consumer lag = high watermark - committed offset.
- Unreachable servers raise ``TransientError``; a request the server rejects (a bad topic
  config, a missing topic) raises ``FatalError``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

# Called with None once the record is acknowledged, or with the error that lost it.
AckCallback = Callable[[Exception | None], None]
# Given the partitions just assigned, the offset to start each from (None: earliest kept).
StartOffsets = Callable[[Sequence["TopicPartition"]], Mapping["TopicPartition", int | None]]


@dataclass(frozen=True, slots=True, order=True)
class TopicPartition:
    topic: str
    partition: int


@dataclass(frozen=True, slots=True)
class Record:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: Mapping[str, bytes] = field(default_factory=dict)
    timestamp_ms: int = 0

    @property
    def position(self) -> TopicPartition:
        return TopicPartition(self.topic, self.partition)


class Topics(Protocol):
    def ensure(self, name: str, *, partitions: int = 1, config: Mapping[str, str] = {}) -> None:
        """Create ``name`` if it does not exist; an existing topic is left as it is."""
        ...

    def exists(self, name: str) -> bool: ...

    def delete(self, name: str) -> None:
        """Delete ``name`` and its records (tests and operators only; never the loop)."""
        ...


class Publisher(Protocol):
    def publish(
        self,
        topic: str,
        key: bytes | None,
        value: bytes | None,
        *,
        headers: Sequence[tuple[str, bytes]] = (),
        on_ack: AckCallback | None = None,
    ) -> None:
        """Queue one record (partitioned by key); blocks only while the local queue is full."""
        ...

    def poll(self, timeout: float = 0.0) -> None:
        """Serve acknowledgements that arrived (``on_ack`` runs here)."""
        ...

    def flush(self, timeout: float) -> int:
        """Wait up to ``timeout`` seconds for every queued record; returns how many are still
        unacknowledged."""
        ...

    def close(self) -> None: ...


class Subscriber(Protocol):
    def subscribe(self, topics: Sequence[str], start: StartOffsets) -> None:
        """Join the consumer group on ``topics``; each assigned partition starts where
        ``start`` says (the caller's own stored position wins over the group's)."""
        ...

    def fetch(self, max_records: int, timeout: float) -> list[Record]:
        """Up to ``max_records`` records, waiting at most ``timeout`` seconds for the first."""
        ...

    def commit(self, offsets: Mapping[TopicPartition, int]) -> None:
        """Record, for the group, the next offset to read in each partition."""
        ...

    def committed(self, partition: TopicPartition) -> int | None:
        """The group's committed next offset (None when nothing was committed)."""
        ...

    def high_watermark(self, partition: TopicPartition) -> int:
        """The offset the next record published to ``partition`` will get."""
        ...

    def close(self) -> None: ...
