"""The event log on Kafka through confluent-kafka: ``KafkaTopics``, ``KafkaPublisher``,
``KafkaSubscriber`` (see ``switchyard.ports.events`` for the contract).

Plain client settings, right for real Kafka and for the harness broker alike:

- ``allow.auto.create.topics=false`` on every client. Brokers (real Kafka by default, and the
  harness broker) create a topic for any metadata request that names it, so without this a
  typo would become a topic. ``Topics.ensure`` is the only way topics come into being.
- Publishers are idempotent with ``acks=all`` and ``enable.gapless.guarantee``: a failure that
  would leave a gap in a partition (other than a record timing out) makes the producer fatal,
  and every later ``publish``/``poll``/``flush`` raises ``FatalError``.
- Subscribers use the classic group protocol (the harness broker hangs on KIP-848), never
  commit by themselves, read only committed transactions, and reset an out-of-range position
  to the earliest record kept.

Errors: a server that does not answer in time -> ``TransientError``; a request it rejects
(bad topic config, missing topic, fatal producer state) -> ``FatalError``. Messages carry the
librdkafka error name and text, never configuration values.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from types import MappingProxyType
from typing import Any, Protocol

from confluent_kafka import (
    OFFSET_BEGINNING,
    TIMESTAMP_NOT_AVAILABLE,
    Consumer,
    KafkaError,
    KafkaException,
    Message,
    Producer,
)
from confluent_kafka import TopicPartition as KafkaPartition

# NewTopic is public here, but the package's stubs do not mark the re-export.
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

from switchyard.errors import FatalError, SwitchyardError, TransientError
from switchyard.ports.events import AckCallback, Record, StartOffsets, TopicPartition

_log = logging.getLogger(__name__)

DEFAULT_TIMEOUT_SECONDS = 5.0
_NO_CONFIG: Mapping[str, str] = MappingProxyType({})
# Errors after which the same request may well succeed later; everything else is fatal.
_TRANSIENT_CODES = frozenset(
    {
        KafkaError._ALL_BROKERS_DOWN,
        KafkaError._MSG_TIMED_OUT,
        KafkaError._RESOLVE,
        KafkaError._TIMED_OUT,
        KafkaError._TIMED_OUT_QUEUE,
        KafkaError._TRANSPORT,
        KafkaError._WAIT_COORD,
        KafkaError.COORDINATOR_NOT_AVAILABLE,
        KafkaError.LEADER_NOT_AVAILABLE,
        KafkaError.NETWORK_EXCEPTION,
        KafkaError.NOT_COORDINATOR,
        KafkaError.REQUEST_TIMED_OUT,
    }
)
_MISSING_TOPIC_CODES = frozenset(
    {KafkaError.UNKNOWN_TOPIC_OR_PART, KafkaError._UNKNOWN_TOPIC, KafkaError._UNKNOWN_PARTITION}
)


def _error(err: KafkaError, doing: str) -> SwitchyardError:
    message = f"{doing}: {err.name()}: {err.str()}"
    if not err.fatal() and (err.retriable() or err.code() in _TRANSIENT_CODES):
        return TransientError(message)
    return FatalError(message)


def _from_exception(exc: KafkaException, doing: str) -> SwitchyardError:
    err = exc.args[0] if exc.args else None
    if isinstance(err, KafkaError):
        return _error(err, doing)
    return FatalError(f"{doing}: {exc}")


class _HasMetadata(Protocol):
    def list_topics(self, topic: str | None = None, timeout: float = -1) -> Any: ...


def _topic_exists(client: _HasMetadata, name: str, timeout: float) -> bool:
    """Whether the cluster knows ``name`` (asked by name: cheap on big clusters, and with
    auto-creation off the question does not create it)."""
    try:
        topic = client.list_topics(topic=name, timeout=timeout).topics.get(name)
    except KafkaException as exc:
        raise _from_exception(exc, f"looking up topic {name!r}") from None
    if topic is None or (topic.error is not None and topic.error.code() in _MISSING_TOPIC_CODES):
        return False
    if topic.error is not None:
        raise _error(topic.error, f"looking up topic {name!r}")
    return True


def _require_topic(client: _HasMetadata, name: str, timeout: float) -> None:
    if not _topic_exists(client, name, timeout):
        raise FatalError(f"topic {name!r} does not exist (topics are never auto-created)")


class KafkaTopics:
    """Topic administration through an ``AdminClient``; every call waits for its outcome."""

    def __init__(
        self,
        bootstrap_servers: str,
        *,
        replication_factor: int = 1,
        timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS,
    ) -> None:
        self._bootstrap_servers = bootstrap_servers
        self._replication_factor = replication_factor
        self._timeout = timeout_seconds
        self._admin = AdminClient(
            {
                "bootstrap.servers": bootstrap_servers,
                "allow.auto.create.topics": False,
            },
            logger=_log,
        )

    def __repr__(self) -> str:
        return f"KafkaTopics(bootstrap_servers={self._bootstrap_servers!r})"

    def ensure(
        self, name: str, *, partitions: int = 1, config: Mapping[str, str] = _NO_CONFIG
    ) -> None:
        if partitions < 1:
            raise FatalError(f"topic {name!r}: partitions must be at least 1, not {partitions}")
        topic = NewTopic(
            name,
            num_partitions=partitions,
            replication_factor=self._replication_factor,
            config=dict(config),
        )
        doing = f"creating topic {name!r}"
        try:
            futures = self._admin.create_topics(
                [topic], operation_timeout=self._timeout, request_timeout=self._timeout
            )
            futures[name].result()
        except KafkaException as exc:
            err = exc.args[0] if exc.args else None
            if not (isinstance(err, KafkaError) and err.code() == KafkaError.TOPIC_ALREADY_EXISTS):
                raise _from_exception(exc, doing) from None
        self._await(name, present=True, doing=doing)

    def exists(self, name: str) -> bool:
        return _topic_exists(self._admin, name, self._timeout)

    def delete(self, name: str) -> None:
        """Delete ``name`` (a missing topic is already deleted) and wait until it is gone."""
        doing = f"deleting topic {name!r}"
        try:
            futures = self._admin.delete_topics(
                [name], operation_timeout=self._timeout, request_timeout=self._timeout
            )
            futures[name].result()
        except KafkaException as exc:
            err = exc.args[0] if exc.args else None
            if not (isinstance(err, KafkaError) and err.code() in _MISSING_TOPIC_CODES):
                raise _from_exception(exc, doing) from None
        self._await(name, present=False, doing=doing)

    def _await(self, name: str, *, present: bool, doing: str) -> None:
        """Wait until metadata agrees, so a publisher or subscriber created next sees it.

        A real cluster answers metadata from any broker, which may lag the controller.
        """
        deadline = time.monotonic() + self._timeout
        while self.exists(name) != present:
            if time.monotonic() >= deadline:
                raise TransientError(f"{doing}: not visible after {self._timeout:g} s")
            time.sleep(0.05)


class KafkaPublisher:
    """An idempotent producer (``acks=all``) that refuses topics that do not exist.

    ``on_ack`` rides on a delivery callback only when given: the CDC source attaches it to the
    last record of each transaction. Acknowledgements come in publish order *per partition*;
    across partitions, an acknowledged record does not prove an earlier record of another
    partition was acknowledged too (it may still be in flight).

    The first record to a topic costs one metadata round trip to check that the topic exists
    (``FatalError`` if not); later ones do not. ``close`` does not wait: records ``flush`` did
    not deliver get ``on_ack(error)``.

    Once the producer is fatally stopped (a gap would otherwise open, e.g. the broker rejects
    its sequence numbers because the topic was deleted and recreated under it), ``poll`` and
    ``flush`` still run the failed records' ``on_ack(error)`` and then raise ``FatalError``,
    as every later ``publish`` does: make a new publisher.
    """

    def __init__(
        self,
        bootstrap_servers: str,
        *,
        client_id: str,
        linger_ms: int = 5,
        compression_type: str = "none",
        timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS,
    ) -> None:
        self._bootstrap_servers = bootstrap_servers
        self._client_id = client_id
        self._timeout = timeout_seconds
        self._fatal: KafkaError | None = None
        self._closed = False
        self._known_topics: set[str] = set()
        # No error_cb: confluent-kafka never passes fatal errors to it (it raises them from
        # poll/flush), and librdkafka retries the others itself and logs them.
        self._producer = Producer(
            {
                "bootstrap.servers": bootstrap_servers,
                "client.id": client_id,
                "enable.idempotence": True,
                "acks": "all",
                "enable.gapless.guarantee": True,
                "linger.ms": linger_ms,
                "compression.type": compression_type,
                "allow.auto.create.topics": False,
                # crc32(key) mod partitions, as the in-memory twin does (and Java's murmur2 not).
                "partitioner": "consistent_random",
                "logger": _log,
            }
        )

    def __repr__(self) -> str:
        return (
            f"KafkaPublisher(bootstrap_servers={self._bootstrap_servers!r}, "
            f"client_id={self._client_id!r})"
        )

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
            _require_topic(self._producer, topic, self._timeout)
            self._known_topics.add(topic)
        wire_headers: list[tuple[str, str | bytes | None]] = list(headers)
        while True:
            try:
                if on_ack is None:
                    self._producer.produce(topic, value, key, headers=wire_headers)
                else:
                    self._producer.produce(
                        topic, value, key, headers=wire_headers, on_delivery=self._delivery(on_ack)
                    )
                return
            except BufferError:
                # The local queue is full: serve acknowledgements until there is room.
                self._serve(self._producer.poll, 0.05)
            except KafkaException as exc:
                raise _from_exception(exc, f"publishing to {topic!r}") from None

    def poll(self, timeout: float = 0.0) -> None:
        self._check_open()
        self._serve(self._producer.poll, timeout)

    def flush(self, timeout: float) -> int:
        self._check_open()
        return self._serve(self._producer.flush, timeout)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._producer.purge(in_queue=True, in_flight=True, blocking=True)
        with contextlib.suppress(KafkaException, SystemError):
            self._producer.poll(0)  # serves on_ack(error) for whatever was purged
        self._producer.close()

    def _serve(self, serve: Callable[[float], int], timeout: float) -> int:
        """Run ``poll`` or ``flush`` (``on_ack`` runs inside), then raise ``FatalError`` if the
        producer has stopped.

        confluent-kafka raises a fatal error from poll/flush, and may run the delivery
        callbacks of that same call with its exception still pending, so it can also surface
        as a ``SystemError`` (caused by it). After either, the acknowledgements still queued
        are served once more, so every record's ``on_ack`` runs.
        """
        try:
            remaining = serve(timeout)
        except (KafkaException, SystemError) as exc:
            fatal = _fatal_cause(exc) or self._fatal
            if fatal is None:
                raise
            self._fatal = self._fatal or fatal
            with contextlib.suppress(KafkaException, SystemError):
                self._producer.poll(0)
            remaining = len(self._producer)
        self._raise_if_stopped()
        return remaining

    def _delivery(self, on_ack: AckCallback) -> Callable[[KafkaError | None, Message], None]:
        def delivered(err: KafkaError | None, msg: Message) -> None:
            try:
                error = None if err is None else _error(err, f"publishing to {msg.topic()!r}")
            except SystemError as exc:  # a fatal error left pending by confluent-kafka
                self._fatal = self._fatal or _fatal_cause(exc)
                error = FatalError(f"publisher stopped: {exc.__cause__ or exc}")
            on_ack(error)

        return delivered

    def _check_open(self) -> None:
        if self._closed:
            raise FatalError(f"{self!r} is closed")

    def _raise_if_stopped(self) -> None:
        if self._fatal is not None:
            raise _error(self._fatal, "publisher stopped")


def _fatal_cause(exc: BaseException) -> KafkaError | None:
    """The fatal KafkaError behind ``exc`` (itself, or what caused it), if there is one."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, KafkaException) and seen.args:
            err = seen.args[0]
            if isinstance(err, KafkaError) and err.fatal():
                return err
        seen = seen.__cause__ or seen.__context__
    return None


class KafkaSubscriber:
    """A group member reading committed records from where ``subscribe``'s ``start`` says.

    ``start`` is asked at every assignment (each rebalance); a partition it leaves out, or maps
    to None, starts at the earliest record kept, as does a position outside the kept range.
    ``committed`` and ``high_watermark`` wait at most ``timeout_seconds``; ``commit`` waits for
    the group coordinator (librdkafka gives it no timeout). The high watermark of a
    read_committed consumer is the last stable offset, the right base for lag.
    """

    def __init__(
        self,
        bootstrap_servers: str,
        *,
        group_id: str,
        client_id: str,
        timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS,
    ) -> None:
        self._bootstrap_servers = bootstrap_servers
        self._group_id = group_id
        self._client_id = client_id
        self._timeout = timeout_seconds
        self._start: StartOffsets | None = None
        self._closed = False
        # An error met after records of the same batch: raised by the next fetch, so those
        # records (whose positions the consumer has passed) still reach the caller.
        self._deferred: SwitchyardError | None = None
        self._consumer = Consumer(
            {
                "bootstrap.servers": bootstrap_servers,
                "group.id": group_id,
                "client.id": client_id,
                "group.protocol": "classic",
                "enable.auto.commit": False,
                "auto.offset.reset": "earliest",
                "isolation.level": "read_committed",
                # Some brokers (the harness's) answer a fetch with everything up to the end of
                # the partition, ignoring fetch.max.bytes; librdkafka drops answers above this
                # (100 MB by default), which would stall a consumer that far behind.
                "receive.message.max.bytes": 1_000_000_000,
                "allow.auto.create.topics": False,
                "logger": _log,
            }
        )

    def __repr__(self) -> str:
        return (
            f"KafkaSubscriber(bootstrap_servers={self._bootstrap_servers!r}, "
            f"group_id={self._group_id!r}, client_id={self._client_id!r})"
        )

    def subscribe(self, topics: Sequence[str], start: StartOffsets) -> None:
        self._check()
        for topic in topics:
            _require_topic(self._consumer, topic, self._timeout)
        self._start = start
        try:
            self._consumer.subscribe(list(topics), on_assign=self._on_assign)
        except KafkaException as exc:
            raise _from_exception(exc, f"subscribing to {list(topics)}") from None

    def fetch(self, max_records: int, timeout: float) -> list[Record]:
        self._check()
        if self._deferred is not None:
            error, self._deferred = self._deferred, None
            raise error
        try:
            # What is already here, at once; only when nothing is, wait for the first record
            # (consume() would wait the whole timeout unless max_records arrived).
            messages = self._consumer.consume(max_records, 0)
            if not messages:
                first = self._consumer.poll(timeout)
                if first is not None:
                    messages = [first, *self._consumer.consume(max_records - 1, 0)]
        except KafkaException as exc:
            raise _from_exception(exc, "fetching") from None
        records: list[Record] = []
        for msg in messages:
            err = msg.error()
            if err is None:
                records.append(_record(msg))
            elif err.code() != KafkaError._PARTITION_EOF and self._deferred is None:
                self._deferred = _error(err, f"fetching from {msg.topic()!r}")
        if not records and self._deferred is not None:
            error, self._deferred = self._deferred, None
            raise error
        return records

    def commit(self, offsets: Mapping[TopicPartition, int]) -> None:
        self._check()
        if not offsets:
            return
        wanted = [KafkaPartition(tp.topic, tp.partition, n) for tp, n in sorted(offsets.items())]
        try:
            result = self._consumer.commit(offsets=wanted, asynchronous=False)
        except KafkaException as exc:
            raise _from_exception(exc, "committing offsets") from None
        for part in result:
            if part.error is not None:
                raise _error(part.error, f"committing {part.topic}[{part.partition}]")

    def committed(self, partition: TopicPartition) -> int | None:
        self._check()
        wanted = KafkaPartition(partition.topic, partition.partition)
        try:
            [part] = self._consumer.committed([wanted], timeout=self._timeout)
        except KafkaException as exc:
            raise _from_exception(exc, f"reading the committed offset of {partition}") from None
        if part.error is not None:
            raise _error(part.error, f"reading the committed offset of {partition}")
        return part.offset if part.offset >= 0 else None

    def high_watermark(self, partition: TopicPartition) -> int:
        self._check()
        wanted = KafkaPartition(partition.topic, partition.partition)
        try:
            _, high = self._consumer.get_watermark_offsets(
                wanted, timeout=self._timeout, cached=False
            )
        except KafkaException as exc:
            raise _from_exception(exc, f"reading the high watermark of {partition}") from None
        return high

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._consumer.close()

    def _on_assign(self, consumer: Consumer, partitions: list[KafkaPartition]) -> None:
        assert self._start is not None  # set by subscribe, before any assignment
        assigned = [TopicPartition(p.topic, p.partition) for p in partitions]
        offsets = self._start(assigned)
        consumer.assign(
            [
                KafkaPartition(tp.topic, tp.partition, _start_offset(offsets.get(tp)))
                for tp in assigned
            ]
        )

    def _check(self) -> None:
        if self._closed:
            raise FatalError(f"{self!r} is closed")


def _start_offset(offset: int | None) -> int:
    return OFFSET_BEGINNING if offset is None else offset


def _record(msg: Message) -> Record:
    topic, partition, offset = msg.topic(), msg.partition(), msg.offset()
    if topic is None or partition is None or offset is None:
        raise FatalError("the broker returned a record without a topic, partition or offset")
    kind, timestamp_ms = msg.timestamp()
    return Record(
        topic=topic,
        partition=partition,
        offset=offset,
        key=msg.key(),
        value=msg.value(),
        headers=_headers(msg),
        timestamp_ms=0 if kind == TIMESTAMP_NOT_AVAILABLE else timestamp_ms,
    )


def _headers(msg: Message) -> dict[str, bytes]:
    """librdkafka's list of ``(name, value)`` as a dict: a repeated name keeps its last value,
    a null value becomes ``b""``."""
    raw = msg.headers()
    pairs = raw.items() if isinstance(raw, dict) else (raw or [])
    return {
        name: value.encode() if isinstance(value, str) else (value or b"") for name, value in pairs
    }
